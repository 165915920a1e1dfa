<?php
// OrthancSeg's Adminer: Debian's Adminer (package adminer) held to one server and one database, the stack's PostgreSQL
// and the worker's records, whose address nginx passes (fastcgi_param ORTHANCSEG_PG_SERVER, ORTHANCSEG_PG_DATABASE;
// see adminer_up in stack.sh). Whatever a login form or URL names, Adminer connects nowhere else. People log in with
// PostgreSQL's own roles: make up creates the read-only orthancseg_browser (docs/operations.md, "Browsing the database").

function adminer_object()
{
    class OrthancSegAdminer extends Adminer
    {
        public function name()
        {
            return 'OrthancSeg records';
        }

        public function credentials()
        {
            return array($_SERVER['ORTHANCSEG_PG_SERVER'], $_GET['username'], get_password());
        }

        public function database()
        {
            return $_SERVER['ORTHANCSEG_PG_DATABASE'];
        }

        public function databases($flush = true)
        {
            return array($_SERVER['ORTHANCSEG_PG_DATABASE']);
        }

        // The login form asks for the user and password only: the system, server and database are fixed.
        public function loginFormField($name, $heading, $value)
        {
            switch ($name) {
                case 'driver':
                    return $heading . html_select('auth[driver]', array('pgsql' => 'PostgreSQL'), 'pgsql', 'loginDriver(this);') . "\n";
                case 'server':
                    return '<tr style="display: none"><td><input type="hidden" name="auth[server]" value="' . h($_SERVER['ORTHANCSEG_PG_SERVER']) . '">' . "\n";
                case 'db':
                    return '<tr style="display: none"><td><input type="hidden" name="auth[db]" value="' . h($_SERVER['ORTHANCSEG_PG_DATABASE']) . '">' . "\n";
                default:
                    return parent::loginFormField($name, $heading, $value);
            }
        }
    }

    return new OrthancSegAdminer();
}

include '/usr/share/adminer/adminer.php';
