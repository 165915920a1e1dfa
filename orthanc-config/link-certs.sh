#!/usr/bin/env bash
# The private CA of the link between the PACS server and the segmentation server (docs/deployment.md), made with
# openssl. The stack and the integration tests both use this script, so what the tests trust is what `make up` makes.
#
# Usage: link-certs.sh ca DIR                 DIR/link-ca.pem and DIR/link-ca.key (kept when they exist)
#        link-certs.sh cert DIR NAME ADDRESS...
#                                             DIR/NAME.pem (certificate) and DIR/NAME.key, signed by DIR/link-ca.*,
#                                             valid for each ADDRESS (an IP address or a DNS name); remade when an
#                                             ADDRESS is missing from the existing one or it expires within 30 days
# Keys are mode 600; certificates 644. The CA is valid 10 years, a server certificate 2 years.
set -euo pipefail
umask 077
die() { printf 'link-certs.sh: %s\n' "$*" >&2; exit 1; }
command -v openssl >/dev/null || die "openssl is missing. Fix: apt-get install openssl"

ca() {
    local dir="$1"
    mkdir -p "$dir"
    [[ -s "$dir/link-ca.pem" && -s "$dir/link-ca.key" ]] && return 0
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=OrthancSeg link CA $(hostname -s 2>/dev/null || echo host) $(date -u +%Y%m%d%H%M%S)" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$dir/link-ca.key" -out "$dir/link-ca.pem" 2>/dev/null || die "openssl could not make the CA in $dir"
    chmod 600 "$dir/link-ca.key"
    chmod 644 "$dir/link-ca.pem"
}

# subjectAltName for the addresses: IP:... for addresses, DNS:... for names.
san_of() {
    local address out=()
    for address in "$@"; do
        if [[ "$address" =~ ^[0-9.]+$ || "$address" == *:* ]]; then out+=("IP:$address"); else out+=("DNS:$address"); fi
    done
    (IFS=,; printf '%s' "${out[*]}")
}

# Does the existing certificate hold every address, chain to the CA and stay valid 30 more days?
cert_fits() {
    local dir="$1" name="$2"
    shift 2
    [[ -s "$dir/$name.pem" && -s "$dir/$name.key" ]] || return 1
    openssl verify -CAfile "$dir/link-ca.pem" "$dir/$name.pem" >/dev/null 2>&1 || return 1
    openssl x509 -in "$dir/$name.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 || return 1
    local sans address
    sans="$(openssl x509 -in "$dir/$name.pem" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ')"
    for address in "$@"; do
        [[ ",$sans," == *",IPAddress:$address,"* || ",$sans," == *",DNS:$address,"* ]] || return 1
    done
}

cert() {
    local dir="$1" name="$2"
    shift 2
    (($# > 0)) || die "cert $name: give at least one address (IP or DNS name) the peer connects to"
    [[ "$name" =~ ^[a-z0-9-]+$ ]] || die "cert: the name '$name' must be lower-case letters, digits and dashes"
    [[ -s "$dir/link-ca.pem" && -s "$dir/link-ca.key" ]] || die "cert $name: no CA in $dir (run: link-certs.sh ca $dir)"
    cert_fits "$dir" "$name" "$@" && return 0
    local csr="$dir/$name.csr"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$dir/$name.key" -out "$csr" 2>/dev/null || die "openssl could not make the key of $name"
    openssl x509 -req -in "$csr" -CA "$dir/link-ca.pem" -CAkey "$dir/link-ca.key" -CAcreateserial -days 730 \
        -extfile <(printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "$(san_of "$@")") \
        -out "$dir/$name.pem" 2>/dev/null || die "openssl could not sign the certificate of $name"
    rm -f "$csr"
    chmod 600 "$dir/$name.key"
    chmod 644 "$dir/$name.pem"
}

case "${1:-}" in
    ca) [[ $# -eq 2 ]] || die "usage: link-certs.sh ca DIR"; ca "$2" ;;
    cert) [[ $# -ge 4 ]] || die "usage: link-certs.sh cert DIR NAME ADDRESS..."; shift; cert "$@" ;;
    *) die "usage: link-certs.sh ca DIR | cert DIR NAME ADDRESS..." ;;
esac
