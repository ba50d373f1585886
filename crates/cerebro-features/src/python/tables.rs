//! Python API tables: which modules are the standard library or mapped third-party code (so
//! an import of them cannot reach the package), what importing a module shows, and what a
//! call of a resolved dotted name (`subprocess.Popen`, `pathlib.Path().read_text`) shows.
//!
//! Dotted names are built by the walker: the module as imported, then attributes, with `()`
//! after a call whose result is used (`requests.Session().post`). Builtins are `builtins.X`.

use crate::Feature::{self, *};

/// Top-level modules of the standard library (Python 3, plus the Python 2 names malware
/// still uses), sorted for binary search.
const STDLIB: &[&str] = &[
    "BaseHTTPServer",
    "ConfigParser",
    "Cookie",
    "HTMLParser",
    "Queue",
    "SimpleHTTPServer",
    "SocketServer",
    "StringIO",
    "Tkinter",
    "__builtin__",
    "__future__",
    "__main__",
    "_thread",
    "_winreg",
    "abc",
    "aifc",
    "antigravity",
    "argparse",
    "array",
    "ast",
    "asynchat",
    "asyncio",
    "asyncore",
    "atexit",
    "audioop",
    "base64",
    "bdb",
    "binascii",
    "bisect",
    "builtins",
    "bz2",
    "cPickle",
    "cProfile",
    "cStringIO",
    "calendar",
    "cgi",
    "cgitb",
    "chunk",
    "cmath",
    "cmd",
    "code",
    "codecs",
    "codeop",
    "collections",
    "colorsys",
    "commands",
    "compileall",
    "concurrent",
    "configparser",
    "contextlib",
    "contextvars",
    "cookielib",
    "copy",
    "copyreg",
    "crypt",
    "csv",
    "ctypes",
    "curses",
    "dataclasses",
    "datetime",
    "dbm",
    "decimal",
    "difflib",
    "dis",
    "distutils",
    "doctest",
    "email",
    "encodings",
    "ensurepip",
    "enum",
    "errno",
    "exceptions",
    "faulthandler",
    "fcntl",
    "filecmp",
    "fileinput",
    "fnmatch",
    "fractions",
    "ftplib",
    "functools",
    "gc",
    "genericpath",
    "getopt",
    "getpass",
    "gettext",
    "glob",
    "graphlib",
    "grp",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "http",
    "httplib",
    "idlelib",
    "imaplib",
    "imghdr",
    "imp",
    "importlib",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "keyword",
    "lib2to3",
    "linecache",
    "locale",
    "logging",
    "lzma",
    "mailbox",
    "mailcap",
    "marshal",
    "math",
    "mimetypes",
    "mmap",
    "modulefinder",
    "msilib",
    "msvcrt",
    "multiprocessing",
    "netrc",
    "nis",
    "nntplib",
    "nt",
    "ntpath",
    "nturl2path",
    "numbers",
    "opcode",
    "operator",
    "optparse",
    "os",
    "ossaudiodev",
    "pathlib",
    "pdb",
    "pickle",
    "pickletools",
    "pipes",
    "pkgutil",
    "platform",
    "plistlib",
    "popen2",
    "poplib",
    "posix",
    "posixpath",
    "pprint",
    "profile",
    "pstats",
    "pty",
    "pwd",
    "py_compile",
    "pyclbr",
    "pydoc",
    "pydoc_data",
    "pyexpat",
    "queue",
    "quopri",
    "random",
    "re",
    "readline",
    "reprlib",
    "resource",
    "rlcompleter",
    "runpy",
    "sched",
    "secrets",
    "select",
    "selectors",
    "sets",
    "shelve",
    "shlex",
    "shutil",
    "signal",
    "site",
    "smtpd",
    "smtplib",
    "sndhdr",
    "socket",
    "socketserver",
    "spwd",
    "sqlite3",
    "sre_compile",
    "sre_constants",
    "sre_parse",
    "ssl",
    "stat",
    "statistics",
    "string",
    "stringprep",
    "struct",
    "subprocess",
    "sunau",
    "symtable",
    "sys",
    "sysconfig",
    "syslog",
    "tabnanny",
    "tarfile",
    "telnetlib",
    "tempfile",
    "termios",
    "textwrap",
    "this",
    "thread",
    "threading",
    "time",
    "timeit",
    "tkinter",
    "token",
    "tokenize",
    "tomllib",
    "trace",
    "traceback",
    "tracemalloc",
    "tty",
    "turtle",
    "turtledemo",
    "types",
    "typing",
    "unicodedata",
    "unittest",
    "urllib",
    "urllib2",
    "urlparse",
    "uu",
    "uuid",
    "venv",
    "warnings",
    "wave",
    "weakref",
    "webbrowser",
    "winreg",
    "winsound",
    "wsgiref",
    "xdrlib",
    "xml",
    "xmlrpc",
    "xmlrpclib",
    "zipapp",
    "zipfile",
    "zipimport",
    "zlib",
    "zoneinfo",
];

/// Third-party modules this file maps (or that build tools provide): never package code.
const MAPPED_THIRD_PARTY: &[&str] = &[
    "Crypto",
    "Cryptodome",
    "PIL",
    "aiohttp",
    "browser_cookie3",
    "browsercookie",
    "cloudpickle",
    "cloudscraper",
    "cryptography",
    "dhooks",
    "dill",
    "discord",
    "discord_webhook",
    "distro",
    "dns",
    "fernet",
    "httplib2",
    "httpx",
    "keyring",
    "mechanize",
    "nacl",
    "paramiko",
    "pexpect",
    "pip",
    "pkg_resources",
    "psutil",
    "pyDes",
    "pyaes",
    "pyautogui",
    "pycurl",
    "pyngrok",
    "pynput",
    "pyperclip",
    "pysftp",
    "requests",
    "requests_html",
    "rsa",
    "setuptools",
    "sh",
    "telebot",
    "telegram",
    "tls_client",
    "urllib3",
    "websocket",
    "websockets",
    "win32api",
    "win32com",
    "win32con",
    "win32crypt",
    "win32process",
    "wmi",
];

/// Whether a top-level module is known (standard library or mapped): importing it can not
/// run code of the package being scanned, so no `Import`/`Call` steps are recorded for it.
pub fn is_known(top: &str) -> bool {
    STDLIB.binary_search(&top).is_ok() || MAPPED_THIRD_PARTY.binary_search(&top).is_ok()
}

/// What importing a module shows, for dotted module names with an entry. The outer `Option`
/// tells whether the name has an entry at all (so `from urllib import parse` can be told
/// apart from `from os import system`).
fn import_entry(module: &str) -> Option<Option<Feature>> {
    Some(match module {
        // Operating system.
        "os" | "nt" | "posix" | "platform" | "getpass" | "pwd" | "grp" | "spwd" | "psutil"
        | "winreg" | "_winreg" | "distro" | "wmi" | "win32api" | "win32con" => Some(R1),
        // File system.
        "os.path" | "posixpath" | "ntpath" | "shutil" | "pathlib" | "pathlib2" | "glob"
        | "tempfile" | "fnmatch" | "zipfile" | "tarfile" | "io" | "fileinput" | "filecmp" => {
            Some(R3)
        }
        // Network.
        "socket" | "urllib" | "urllib.request" | "urllib2" | "urllib3" | "requests"
        | "http.client" | "http.server" | "httplib" | "httplib2" | "httpx" | "aiohttp"
        | "smtplib" | "ftplib" | "telnetlib" | "poplib" | "imaplib" | "nntplib" | "paramiko"
        | "pysftp" | "websocket" | "websockets" | "dns" | "pycurl" | "discord"
        | "discord_webhook" | "dhooks" | "telebot" | "telegram" | "xmlrpc.client" | "xmlrpclib"
        | "socketserver" | "SocketServer" | "pyngrok" | "cloudscraper" | "requests_html"
        | "mechanize" | "tls_client" => Some(D1),
        // Encoding and encryption.
        "base64" | "codecs" | "zlib" | "marshal" | "binascii" | "cryptography" | "Crypto"
        | "Cryptodome" | "gzip" | "bz2" | "lzma" | "fernet" | "rsa" | "nacl" | "pyaes"
        | "pyDes" | "uu" | "quopri" => Some(E1),
        // Processes and native code.
        "subprocess" | "multiprocessing" | "pty" | "ctypes" | "commands" | "popen2" | "pexpect"
        | "sh" | "win32process" => Some(P1),
        // Entries that only stop the prefix rule: parsing URLs is not networking.
        "urllib.parse" | "urlparse" | "http" | "http.cookies" | "http.cookiejar"
        | "http.HTTPStatus" | "xmlrpc" | "xmlrpc.server" => None,
        _ => return None,
    })
}

/// Whether `module` (dotted) has an entry of its own, i.e. is a module this file knows by
/// that full name (`os.path`, `urllib.request`).
pub fn has_import_entry(module: &str) -> bool {
    import_entry(module).is_some()
}

/// The feature of importing `module` (dotted): the entry of its longest listed prefix.
pub fn import_feature(module: &str) -> Option<Feature> {
    let mut name = module;
    loop {
        if let Some(entry) = import_entry(name) {
            return entry;
        }
        name = &name[..name.rfind('.')?];
    }
}

/// Builtins worth resolving (the walker turns them into `builtins.X`); other builtin names
/// resolve to nothing and never become calls into the package.
pub fn interesting_builtin(name: &str) -> bool {
    matches!(
        name,
        "open"
            | "file"
            | "exec"
            | "eval"
            | "compile"
            | "__import__"
            | "execfile"
            | "getattr"
            | "bytes"
            | "bytearray"
            | "globals"
            | "vars"
            | "reload"
    )
}

/// All builtin names of Python 3 and 2 (sorted): a bare call of one of these is never a call
/// into the package, even under `from pkg import *`.
const BUILTINS: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BaseException",
    "BlockingIOError",
    "BrokenPipeError",
    "BufferError",
    "BytesWarning",
    "ChildProcessError",
    "ConnectionAbortedError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "DeprecationWarning",
    "EOFError",
    "EnvironmentError",
    "Exception",
    "FileExistsError",
    "FileNotFoundError",
    "FloatingPointError",
    "FutureWarning",
    "GeneratorExit",
    "IOError",
    "ImportError",
    "ImportWarning",
    "IndentationError",
    "IndexError",
    "InterruptedError",
    "IsADirectoryError",
    "KeyError",
    "KeyboardInterrupt",
    "LookupError",
    "MemoryError",
    "ModuleNotFoundError",
    "NameError",
    "NotADirectoryError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PendingDeprecationWarning",
    "PermissionError",
    "ProcessLookupError",
    "RecursionError",
    "ReferenceError",
    "ResourceWarning",
    "RuntimeError",
    "RuntimeWarning",
    "StopAsyncIteration",
    "StopIteration",
    "SyntaxError",
    "SyntaxWarning",
    "SystemError",
    "SystemExit",
    "TabError",
    "TimeoutError",
    "TypeError",
    "UnboundLocalError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "UnicodeTranslateError",
    "UnicodeWarning",
    "UserWarning",
    "ValueError",
    "Warning",
    "WindowsError",
    "ZeroDivisionError",
    "__build_class__",
    "__import__",
    "abs",
    "aiter",
    "all",
    "anext",
    "any",
    "apply",
    "ascii",
    "basestring",
    "bin",
    "bool",
    "breakpoint",
    "buffer",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "cmp",
    "compile",
    "complex",
    "copyright",
    "credits",
    "delattr",
    "dict",
    "dir",
    "divmod",
    "enumerate",
    "eval",
    "exec",
    "execfile",
    "exit",
    "file",
    "filter",
    "float",
    "format",
    "frozenset",
    "getattr",
    "globals",
    "hasattr",
    "hash",
    "help",
    "hex",
    "id",
    "input",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "license",
    "list",
    "locals",
    "long",
    "map",
    "max",
    "memoryview",
    "min",
    "next",
    "object",
    "oct",
    "open",
    "ord",
    "pow",
    "print",
    "property",
    "quit",
    "range",
    "raw_input",
    "reduce",
    "reload",
    "repr",
    "reversed",
    "round",
    "set",
    "setattr",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "unichr",
    "unicode",
    "vars",
    "xrange",
    "zip",
];

/// Whether `name` is a builtin.
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.binary_search(&name).is_ok()
}

/// `setup()` of setuptools or distutils, whose `cmdclass` installs hooks.
pub fn is_setup(api: &str) -> bool {
    matches!(
        api,
        "setuptools.setup" | "distutils.core.setup" | "setuptools.setup()" | "distutils.setup"
    )
}

/// Dynamic imports taking a module name: `__import__('os')`, `importlib.import_module('os')`.
pub fn is_dynamic_import(api: &str) -> bool {
    matches!(
        api,
        "builtins.__import__" | "importlib.import_module" | "importlib.__import__"
    )
}

/// What a call of the resolved dotted name `api` shows, if anything.
pub fn call_feature(api: &str) -> Option<Feature> {
    let (top, rest) = api.split_once('.').unwrap_or((api, ""));
    let last = api.rsplit('.').next().unwrap_or(api);
    // A method called on the result of a call (`requests.Session().post`).
    let on_result = rest.contains("()");
    match top {
        "builtins" => match rest {
            "exec" | "eval" | "compile" | "__import__" | "execfile" => Some(P4),
            "open" | "file" => Some(R4),
            "bytes.fromhex" | "bytearray.fromhex" => Some(E2),
            _ => None,
        },
        "os" | "nt" | "posix" => os_call(rest),
        "posixpath" | "ntpath" => Some(R4),
        "platform" | "getpass" | "pwd" | "grp" | "spwd" | "psutil" | "winreg" | "_winreg"
        | "distro" | "wmi" => (!on_result).then_some(R2),
        "uuid" => (rest == "getnode").then_some(R2),
        "socket" => match rest {
            "gethostname" | "getfqdn" | "if_nameindex" => Some(R2),
            _ if on_result => net_method(last),
            "socket" | "create_connection" | "gethostbyname" | "gethostbyname_ex"
            | "getaddrinfo" | "gethostbyaddr" | "socketpair" | "fromfd" | "create_server" => {
                Some(D2)
            }
            _ => None,
        },
        "requests" | "httpx" | "urllib3" | "aiohttp" | "pycurl" | "httplib" | "httplib2"
        | "urllib2" | "smtplib" | "ftplib" | "telnetlib" | "poplib" | "imaplib" | "nntplib"
        | "paramiko" | "pysftp" | "websocket" | "websockets" | "dns" | "discord"
        | "discord_webhook" | "dhooks" | "telebot" | "telegram" | "xmlrpclib" | "socketserver"
        | "SocketServer" | "pyngrok" | "cloudscraper" | "requests_html" | "mechanize"
        | "tls_client" => net_call(rest, last),
        "urllib" => {
            if let Some(sub) = rest.strip_prefix("request.") {
                net_call(sub, last)
            } else {
                match rest {
                    "urlopen" | "urlretrieve" | "URLopener" | "FancyURLopener" => Some(D2),
                    _ if rest.starts_with("urlopen(") || rest.starts_with("URLopener(") => {
                        net_method(last)
                    }
                    _ => None,
                }
            }
        }
        "http" => match rest.split_once('.') {
            Some(("client" | "server", sub)) => net_call(sub, last),
            _ => None,
        },
        "xmlrpc" => match rest.split_once('.') {
            Some(("client", sub)) => net_call(sub, last),
            _ => None,
        },
        "ssl" => matches!(rest, "wrap_socket" | "create_connection")
            .then_some(D2)
            .or_else(|| (on_result && last == "wrap_socket").then_some(D2)),
        "asyncio" => match rest {
            "open_connection" | "start_server" => Some(D2),
            "create_subprocess_shell" | "create_subprocess_exec" => Some(P2),
            _ => None,
        },
        "subprocess" => matches!(
            rest,
            "Popen"
                | "run"
                | "call"
                | "check_output"
                | "check_call"
                | "getoutput"
                | "getstatusoutput"
        )
        .then_some(P2),
        "pty" => matches!(rest, "spawn" | "fork").then_some(P2),
        "commands" | "popen2" | "sh" | "win32process" => (!on_result).then_some(P2),
        // Loading native code and calling into it; not the type constructors.
        "ctypes" => matches!(
            rest.split('.').next().unwrap_or(rest),
            "windll"
                | "cdll"
                | "oledll"
                | "pydll"
                | "CDLL"
                | "WinDLL"
                | "OleDLL"
                | "PyDLL"
                | "pythonapi"
                | "LibraryLoader"
                | "CFUNCTYPE"
                | "WINFUNCTYPE"
                | "PYFUNCTYPE"
                | "memmove"
                | "memset"
                | "string_at"
        )
        .then_some(P2)
        .filter(|_| !on_result),
        "multiprocessing" => match rest {
            "Process" | "Pool" => Some(P2),
            "cpu_count" => Some(R2),
            _ => None,
        },
        "pexpect" => matches!(rest, "spawn" | "run" | "popen_spawn.PopenSpawn").then_some(P2),
        "win32api" => {
            if rest.starts_with("ShellExecute") || rest == "WinExec" {
                Some(P2)
            } else {
                Some(R2)
            }
        }
        "win32com" => rest.starts_with("client.").then_some(P2),
        "win32crypt" => Some(if rest == "CryptUnprotectData" { R5 } else { E2 }),
        "browser_cookie3" | "browsercookie" | "pynput" => Some(R5),
        "keyring" => matches!(rest, "get_password" | "get_credential").then_some(R5),
        "pyperclip" => (rest == "paste").then_some(R5),
        "pyautogui" => (rest == "screenshot").then_some(R5),
        "PIL" => (rest == "ImageGrab.grab").then_some(R5),
        "pickle" | "cPickle" | "_pickle" | "dill" | "cloudpickle" => {
            matches!(rest, "loads" | "load" | "Unpickler").then_some(P4)
        }
        "marshal" => match rest {
            "loads" | "load" => Some(P4),
            "dumps" | "dump" => Some(E2),
            _ => None,
        },
        "importlib" => match rest {
            "import_module"
            | "__import__"
            | "reload"
            | "util.spec_from_file_location"
            | "machinery.SourceFileLoader" => Some(P4),
            _ => None,
        },
        "imp" => matches!(
            rest,
            "load_source" | "load_module" | "load_compiled" | "load_dynamic" | "reload"
        )
        .then_some(P4),
        "runpy" => matches!(rest, "run_path" | "run_module").then_some(P4),
        "types" => matches!(rest, "FunctionType" | "CodeType" | "LambdaType").then_some(P4),
        "zipimport" => (on_result && last == "load_module").then_some(P4),
        "base64" | "binascii" | "uu" | "quopri" => (!on_result).then_some(E2),
        "zlib" => (!on_result || matches!(last, "decompress" | "compress")).then_some(E2),
        "codecs" => match rest {
            "open" => Some(R4),
            "decode" | "encode" | "getdecoder" | "getencoder" | "iterdecode" | "iterencode" => {
                Some(E2)
            }
            _ => None,
        },
        "gzip" | "bz2" | "lzma" => match rest {
            "compress" | "decompress" => Some(E2),
            "open" | "GzipFile" | "BZ2File" | "LZMAFile" => Some(R4),
            _ => None,
        },
        "Crypto" | "Cryptodome" | "cryptography" | "fernet" | "rsa" | "nacl" | "pyaes"
        | "pyDes" => {
            if on_result {
                matches!(
                    last,
                    "decrypt" | "encrypt" | "decrypt_and_verify" | "encrypt_and_digest"
                )
                .then_some(E2)
            } else if rest.starts_with("exceptions") || rest.starts_with("utils") {
                None
            } else {
                Some(E2)
            }
        }
        "shutil" | "glob" | "tempfile" | "zipfile" | "tarfile" | "fileinput" | "filecmp" => {
            (!on_result).then_some(R4)
        }
        "pathlib" | "pathlib2" => path_method(last, rest),
        "io" => matches!(rest, "open" | "FileIO" | "open_code").then_some(R4),
        // Opening a database file (browser stores are SQLite).
        "sqlite3" => (rest == "connect").then_some(R4),
        // Installing packages from inside a package runs pip in process.
        "pip" => {
            matches!(rest, "main" | "_internal.main" | "_internal.cli.main.main").then_some(P2)
        }
        _ => None,
    }
}

/// Whether `from module import *` brings `name` into scope as something this file maps.
/// Modules mapped wholesale (every call of `base64` is `E2`) list their public names, so a
/// local variable of a file that star-imports them is not taken for an API.
pub fn star_member(module: &str, name: &str) -> bool {
    let exports = match module {
        "os" | "nt" | "posix" => {
            "system popen startfile fork forkpty kill killpg execl execle execlp execlpe execv \
             execve execvp execvpe spawnl spawnle spawnlp spawnlpe spawnv spawnve spawnvp \
             spawnvpe posix_spawn listdir walk scandir getcwd remove unlink rename renames \
             replace makedirs mkdir rmdir removedirs chmod chown open fdopen write read \
             symlink link stat access chdir getenv putenv environ getlogin getuid geteuid \
             getpid getppid uname urandom cpu_count path"
        }
        "base64" => {
            "b64encode b64decode standard_b64encode standard_b64decode urlsafe_b64encode \
             urlsafe_b64decode b32encode b32decode b32hexencode b32hexdecode b16encode \
             b16decode a85encode a85decode b85encode b85decode z85encode z85decode encode \
             decode encodebytes decodebytes encodestring decodestring"
        }
        "binascii" => {
            "a2b_base64 b2a_base64 a2b_hex b2a_hex hexlify unhexlify a2b_uu b2a_uu a2b_qp \
             b2a_qp"
        }
        "zlib" => "compress decompress compressobj decompressobj",
        "platform" => {
            "system node release version machine processor uname platform architecture \
             python_version mac_ver win32_ver linux_distribution freedesktop_os_release"
        }
        "getpass" => "getuser getpass",
        "shutil" => {
            "copy copy2 copyfile copytree move rmtree make_archive unpack_archive which \
             disk_usage copyfileobj"
        }
        "glob" => "glob iglob",
        "tempfile" => {
            "mkdtemp mkstemp gettempdir NamedTemporaryFile TemporaryFile TemporaryDirectory \
             SpooledTemporaryFile mktemp"
        }
        "requests" => "get post put patch delete head options request Session session",
        "ctypes" => {
            "windll cdll CDLL WinDLL oledll OleDLL pythonapi CFUNCTYPE WINFUNCTYPE memmove \
             memset create_string_buffer create_unicode_buffer cast"
        }
        "zipfile" => "ZipFile",
        "tarfile" => "open TarFile",
        _ => {
            // Modules mapped name by name need no list; wholesale ones without a list are
            // not resolved through `*` at all.
            let wholesale = call_feature(&format!("{module}.__any_name__")).is_some();
            let candidate = format!("{module}.{name}");
            return !wholesale && (call_feature(&candidate).is_some() || is_setup(&candidate));
        }
    };
    exports.split_whitespace().any(|e| e == name)
}

/// Calls into `os`: environment reads, processes, files, and the rest of the system.
fn os_call(rest: &str) -> Option<Feature> {
    // A method of a call's result (`os.popen(c).read`) adds nothing to the call.
    if rest.contains("()") {
        return None;
    }
    let first = rest.split('.').next().unwrap_or(rest);
    if matches!(first, "environ" | "environb" | "getenv" | "getenvb") {
        return Some(R5);
    }
    if first == "path" {
        return Some(R4);
    }
    if matches!(
        first,
        "sep"
            | "pathsep"
            | "linesep"
            | "extsep"
            | "altsep"
            | "curdir"
            | "pardir"
            | "devnull"
            | "name"
    ) {
        return None;
    }
    Some(match rest {
        "system" | "popen" | "popen2" | "popen3" | "popen4" | "startfile" | "fork" | "forkpty"
        | "kill" | "killpg" => P2,
        r if r.starts_with("exec") || r.starts_with("spawn") || r.starts_with("posix_spawn") => P2,
        // Enumeration is reconnaissance (DESIGN lists os.listdir under R2).
        "listdir" | "walk" | "scandir" | "getcwd" | "getcwdb" => R2,
        "remove" | "unlink" | "rename" | "renames" | "replace" | "makedirs" | "mkdir" | "rmdir"
        | "removedirs" | "chmod" | "lchmod" | "fchmod" | "chown" | "lchown" | "open" | "fdopen"
        | "write" | "read" | "symlink" | "link" | "truncate" | "utime" | "stat" | "lstat"
        | "access" | "chdir" | "mkfifo" | "readlink" | "chroot" => R4,
        _ => R2,
    })
}

/// A call on a network module: everything but its helpers and exceptions.
fn net_call(rest: &str, last: &str) -> Option<Feature> {
    let first = rest.split('.').next().unwrap_or(rest);
    if matches!(
        first,
        "exceptions"
            | "utils"
            | "util"
            | "packages"
            | "adapters"
            | "status_codes"
            | "codes"
            | "compat"
            | "structures"
            | "hooks"
            | "auth"
            | "disable_warnings"
            | "HTTPError"
            | "URLError"
            | "error"
            | "parse"
            | "quote"
            | "unquote"
            | "urlencode"
            | "pathname2url"
            | "url2pathname"
    ) {
        return None;
    }
    if rest.contains("()") {
        return net_method(last);
    }
    Some(D2)
}

/// Methods that move data over an open connection or session.
fn net_method(method: &str) -> Option<Feature> {
    matches!(
        method,
        "get"
            | "post"
            | "put"
            | "patch"
            | "delete"
            | "head"
            | "options"
            | "request"
            | "send"
            | "sendall"
            | "sendto"
            | "sendfile"
            | "send_message"
            | "sendmail"
            | "connect"
            | "connect_ex"
            | "recv"
            | "recvfrom"
            | "recv_into"
            | "urlopen"
            | "open"
            | "retrieve"
            | "execute"
            | "exec_command"
            | "login"
            | "storbinary"
            | "retrbinary"
            | "stream"
            | "perform"
            | "upload"
            | "send_document"
            | "send_message_to"
            | "ws_connect"
            | "bind"
            | "listen"
            | "accept"
            | "makefile"
            | "putrequest"
            | "getresponse"
    )
    .then_some(D2)
}

/// `pathlib` calls that touch the file system (building a path does not).
fn path_method(last: &str, rest: &str) -> Option<Feature> {
    if matches!(
        rest,
        "Path" | "PurePath" | "PosixPath" | "WindowsPath" | "PurePosixPath"
    ) {
        return None;
    }
    matches!(
        last,
        "read_text"
            | "read_bytes"
            | "write_text"
            | "write_bytes"
            | "open"
            | "unlink"
            | "mkdir"
            | "rmdir"
            | "rename"
            | "replace"
            | "touch"
            | "chmod"
            | "iterdir"
            | "glob"
            | "rglob"
            | "home"
            | "cwd"
            | "exists"
            | "is_file"
            | "is_dir"
            | "stat"
            | "expanduser"
            | "symlink_to"
            | "hardlink_to"
            | "readlink"
            | "walk"
    )
    .then_some(R4)
}

/// Features of a *reference* to an API without calling it (`Thread(target=os.system)`,
/// `map(eval, xs)`): only the unmistakable process and code-execution functions.
pub fn reference_feature(api: &str) -> Option<Feature> {
    let top = api.split('.').next().unwrap_or(api);
    if !matches!(top, "os" | "subprocess" | "builtins" | "pty") {
        return None;
    }
    call_feature(api).filter(|f| matches!(f, P2 | P4))
}

/// Codec names that `.decode(name)` / `.encode(name)` (Python 2) turn into a decoder.
pub fn is_obscuring_codec(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "hex"
            | "hex_codec"
            | "base64"
            | "base_64"
            | "base64_codec"
            | "rot13"
            | "rot_13"
            | "rot-13"
            | "zlib"
            | "zlib_codec"
            | "zip"
            | "bz2"
            | "bz2_codec"
            | "uu"
            | "uu_codec"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted() {
        for t in [STDLIB, MAPPED_THIRD_PARTY, BUILTINS] {
            assert!(
                t.windows(2).all(|w| w[0] < w[1]),
                "{:?}",
                t.windows(2).find(|w| w[0] >= w[1])
            );
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(import_feature("os"), Some(R1));
        assert_eq!(import_feature("os.path"), Some(R3));
        assert_eq!(import_feature("urllib.parse"), None);
        assert_eq!(import_feature("urllib.request"), Some(D1));
        assert_eq!(import_feature("Crypto.Cipher.AES"), Some(E1));
        assert_eq!(import_feature("json"), None);
        assert_eq!(call_feature("os.path.join"), Some(R4));
        assert_eq!(call_feature("requests.Session().post"), Some(D2));
        assert_eq!(call_feature("requests.get().json"), None);
        assert_eq!(call_feature("re.compile"), None);
        assert_eq!(call_feature("pathlib.Path"), None);
        assert_eq!(call_feature("pathlib.Path().read_text"), Some(R4));
    }
}
