using System.CommandLine;
using System.Text;

namespace OrthancSeg.Cli.Completion;

/// <summary>
/// Shell completion scripts for bash, zsh and fish, generated from the command tree (<see cref="CompletionTable"/>), so they
/// know every command, option and fixed value of this build without calling the CLI on each Tab. Each script walks the words
/// typed so far the same way: a word that names a subcommand of the path so far extends the path, an option that takes a value
/// skips the next word; then it offers the value of that option, the options (after "-"), or the subcommands and fixed values,
/// and falls back to file names where any word goes.
/// </summary>
internal static class CompletionScripts
{
    public static readonly string[] Shells = ["bash", "zsh", "fish"];

    public static string For(string shell, RootCommand root) => shell switch
    {
        "bash" => Bash(CompletionTable.Build(root)),
        "zsh" => Zsh(CompletionTable.Build(root)),
        "fish" => Fish(CompletionTable.Build(root)),
        _ => throw new ArgumentOutOfRangeException(nameof(shell), shell, "Not a shell this CLI completes for"),
    };

    private static string Bash(IReadOnlyList<KeyValuePair<string, string[]>> table)
    {
        var script = new StringBuilder();
        script.AppendLine("# bash completion for orthancseg, generated from its command tree by `orthancseg completion bash`.");
        script.AppendLine("# Install: source <(orthancseg completion bash)   (in ~/.bashrc, or save it as ~/.local/share/bash-completion/completions/orthancseg)");
        script.AppendLine("declare -gA _orthancseg_table=(");
        foreach (var (key, words) in table)
        {
            script.AppendLine($"    [{Quote(key)}]={Quote(string.Join(' ', words))}");
        }
        script.AppendLine(")");
        script.Append("""
            _orthancseg() {
                local cur="${COMP_WORDS[COMP_CWORD]}" cmdpath="" word key child i
                COMPREPLY=()
                for ((i = 1; i < COMP_CWORD; i++)); do
                    word="${COMP_WORDS[i]}"
                    key="v:$cmdpath|$word"
                    if [[ -n "${_orthancseg_table[$key]+set}" ]]; then
                        if ((i == COMP_CWORD - 1)); then
                            if [[ -n "${_orthancseg_table[$key]}" ]]; then
                                COMPREPLY=($(compgen -W "${_orthancseg_table[$key]}" -- "$cur"))
                            else
                                compopt -o default 2>/dev/null
                            fi
                            return 0
                        fi
                        ((i++))
                    elif [[ "$word" != -* ]]; then
                        child="${cmdpath:+$cmdpath }$word"
                        if [[ -n "${_orthancseg_table[w:$child]+set}" ]]; then
                            cmdpath="$child"
                        fi
                    fi
                done
                if [[ "$cur" == -* ]]; then
                    COMPREPLY=($(compgen -W "${_orthancseg_table[o:$cmdpath]}" -- "$cur"))
                elif [[ -n "${_orthancseg_table[w:$cmdpath]}" ]]; then
                    COMPREPLY=($(compgen -W "${_orthancseg_table[w:$cmdpath]}" -- "$cur"))
                else
                    compopt -o default 2>/dev/null
                fi
                return 0
            }
            complete -F _orthancseg orthancseg

            """);
        return script.ToString();
    }

    private static string Zsh(IReadOnlyList<KeyValuePair<string, string[]>> table)
    {
        var script = new StringBuilder();
        script.AppendLine("#compdef orthancseg");
        script.AppendLine("# zsh completion for orthancseg, generated from its command tree by `orthancseg completion zsh`.");
        script.AppendLine("# Install: source <(orthancseg completion zsh)   (in ~/.zshrc, after compinit)");
        script.AppendLine("typeset -gA _orthancseg_table");
        script.AppendLine("_orthancseg_table=(");
        foreach (var (key, words) in table)
        {
            script.AppendLine($"    {Quote(key)} {Quote(string.Join(' ', words))}");
        }
        script.AppendLine(")");
        // zsh's words are 1-based, words[1] is the command itself and words[CURRENT] the word being completed.
        script.Append("""
            _orthancseg() {
                local cur="${words[CURRENT]}" cmdpath="" word key child i
                for ((i = 2; i < CURRENT; i++)); do
                    word="${words[i]}"
                    key="v:$cmdpath|$word"
                    if (( ${+_orthancseg_table[$key]} )); then
                        if ((i == CURRENT - 1)); then
                            if [[ -n "${_orthancseg_table[$key]}" ]]; then
                                compadd -- ${=_orthancseg_table[$key]}
                            else
                                _files
                            fi
                            return
                        fi
                        ((i++))
                    elif [[ "$word" != -* ]]; then
                        child="${cmdpath:+$cmdpath }$word"
                        if (( ${+_orthancseg_table[w:$child]} )); then
                            cmdpath="$child"
                        fi
                    fi
                done
                if [[ "$cur" == -* ]]; then
                    compadd -- ${=_orthancseg_table[o:$cmdpath]}
                elif [[ -n "${_orthancseg_table[w:$cmdpath]}" ]]; then
                    compadd -- ${=_orthancseg_table[w:$cmdpath]}
                else
                    _files
                fi
            }
            compdef _orthancseg orthancseg

            """);
        return script.ToString();
    }

    private static string Fish(IReadOnlyList<KeyValuePair<string, string[]>> table)
    {
        var script = new StringBuilder();
        script.AppendLine("# fish completion for orthancseg, generated from its command tree by `orthancseg completion fish`.");
        script.AppendLine("# Install: orthancseg completion fish > ~/.config/fish/completions/orthancseg.fish");
        script.AppendLine("function __orthancseg_table --argument-names key");
        script.AppendLine("    switch $key");
        foreach (var (key, words) in table)
        {
            // switch patterns treat * ? [ as wildcards; keys hold none of them (checked by Quote).
            script.AppendLine($"        case {Quote(key)}");
            script.AppendLine(words.Length == 0 ? "            return 0" : $"            printf '%s\\n' {string.Join(' ', words.Select(Quote))}");
        }
        script.AppendLine("        case '*'");
        script.AppendLine("            return 1");
        script.AppendLine("    end");
        script.AppendLine("end");
        script.Append("""
            function __orthancseg_complete
                set -l tokens (commandline -opc)
                set -l cur (commandline -ct)
                set -l cmdpath ''
                set -l n (count $tokens)
                set -l i 2
                while test $i -le $n
                    set -l word $tokens[$i]
                    set -l key "v:$cmdpath|$word"
                    if __orthancseg_table $key >/dev/null
                        if test $i -eq $n
                            set -l values (__orthancseg_table $key)
                            if test (count $values) -gt 0
                                printf '%s\n' $values
                            else
                                __fish_complete_path $cur
                            end
                            return
                        end
                        set i (math $i + 1)
                    else if not string match -q -- '-*' $word
                        set -l child (string trim -- "$cmdpath $word")
                        if __orthancseg_table "w:$child" >/dev/null
                            set cmdpath $child
                        end
                    end
                    set i (math $i + 1)
                end
                if string match -q -- '-*' $cur
                    __orthancseg_table "o:$cmdpath"
                else
                    set -l words (__orthancseg_table "w:$cmdpath")
                    if test (count $words) -gt 0
                        printf '%s\n' $words
                    else
                        __fish_complete_path $cur
                    end
                end
            end
            complete -c orthancseg -f -a '(__orthancseg_complete)'

            """);
        return script.ToString();
    }

    /// <summary>Single-quoted for all three shells; names in the tree are plain words, so a quote or wildcard in one is a bug here.</summary>
    private static string Quote(string text) =>
        text.IndexOfAny(['\'', '\\', '*', '?', '[', ']']) < 0
            ? $"'{text}'"
            : throw new InvalidOperationException($"'{text}' in the command tree cannot be put in a completion script");
}
