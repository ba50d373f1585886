//! What JavaScript modules and globals mean in the unified feature set.
//!
//! Kept apart from the tree walk so that extending the mapping (a new network client, a new
//! encoder) is a one-line change here and never touches the walker.

use crate::Feature;

/// How a package or built-in module behaves: decides the feature of importing it and of
/// calling into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Operating-system information (`R1` / `R2`).
    Os,
    /// File system and paths (`R3` / `R4`).
    Fs,
    /// Network clients and servers (`D1` / `D2`).
    Net,
    /// Encoders and compressors: every call encodes or decodes (`E1` / `E2`).
    Codec,
    /// `crypto`: only ciphers count as encoding calls; hashes and random bytes are routine.
    Crypto,
    /// `buffer`: the module's own `atob`/`btoa` decode; `Buffer.from` is judged as the global.
    Buffer,
    /// Process spawning: every call runs a program (`P1` / `P2`).
    Proc,
    /// `shelljs`: `exec` runs a shell, the rest are file commands.
    ShellJs,
    /// `cluster`: only `fork` starts a process.
    Cluster,
    /// `worker_threads`: `new Worker` starts a thread, with `eval: true` from source text.
    Workers,
    /// `vm`: compiling and running source text (`P4`); importing it alone is not a feature.
    Vm,
}

/// The kind of a package by its name (the part before any subpath, `node:` stripped).
pub(super) fn module_kind(package: &str) -> Option<Kind> {
    Some(match package {
        "os" | "systeminformation" | "node-machine-id" => Kind::Os,
        "fs" | "path" | "fs-extra" | "graceful-fs" | "promise-fs" | "glob" | "fast-glob"
        | "rimraf" | "mkdirp" | "tmp" => Kind::Fs,
        "http"
        | "https"
        | "http2"
        | "net"
        | "dns"
        | "tls"
        | "dgram"
        | "axios"
        | "node-fetch"
        | "cross-fetch"
        | "isomorphic-fetch"
        | "request"
        | "request-promise"
        | "request-promise-native"
        | "ws"
        | "socket.io-client"
        | "got"
        | "superagent"
        | "undici"
        | "needle"
        | "phin"
        | "ftp"
        | "basic-ftp"
        | "ssh2"
        | "nodemailer"
        | "node-telegram-bot-api"
        | "sync-request"
        | "then-request"
        | "sync-fetch"
        | "xmlhttprequest"
        | "xmlhttprequest-ssl"
        | "xhr2"
        | "ky"
        | "make-fetch-happen"
        | "minipass-fetch"
        | "urllib"
        | "discord.js"
        | "discord.js-self" => Kind::Net,
        "zlib" | "crypto-js" | "js-base64" | "base-64" | "base64-js" | "bs58" | "pako"
        | "lz-string" | "node-forge" => Kind::Codec,
        "crypto" => Kind::Crypto,
        "buffer" => Kind::Buffer,
        "child_process" | "execa" | "cross-spawn" | "node-pty" | "sudo-prompt" | "node-cmd" => {
            Kind::Proc
        }
        "shelljs" => Kind::ShellJs,
        "cluster" => Kind::Cluster,
        "worker_threads" => Kind::Workers,
        "vm" | "node-serialize" => Kind::Vm,
        _ => return None,
    })
}

/// The feature of importing a module of this kind.
pub(super) fn import_feature(kind: Kind) -> Option<Feature> {
    match kind {
        Kind::Os => Some(Feature::R1),
        Kind::Fs => Some(Feature::R3),
        Kind::Net => Some(Feature::D1),
        Kind::Codec | Kind::Crypto | Kind::Buffer => Some(Feature::E1),
        Kind::Proc | Kind::ShellJs | Kind::Cluster | Kind::Workers => Some(Feature::P1),
        Kind::Vm => None,
    }
}

/// Cipher functions of `crypto` (and of `crypto.subtle`): the ones that encode data.
const CIPHERS: &[&str] = &[
    "createCipheriv",
    "createDecipheriv",
    "createCipher",
    "createDecipher",
    "privateDecrypt",
    "privateEncrypt",
    "publicEncrypt",
    "publicDecrypt",
    "encrypt",
    "decrypt",
];

/// `vm` (and node-serialize) functions that compile or run source text.
const VM_RUNNERS: &[&str] = &[
    "runInNewContext",
    "runInThisContext",
    "runInContext",
    "compileFunction",
    "Script",
    "createScript",
    "SourceTextModule",
    // node-serialize: revives functions from their source text.
    "unserialize",
];

/// The feature of calling (or constructing) `path` inside a module of this kind; `path` is
/// the dotted member chain after the module (`promises.readFile`), empty for the module itself.
pub(super) fn call_feature(kind: Kind, path: &str) -> Option<Feature> {
    let last = path.rsplit('.').next().unwrap_or("");
    let first = path.split('.').next().unwrap_or("");
    // Methods every object has (`cp.exec.toString()`) do not use the module.
    if matches!(
        last,
        "toString" | "valueOf" | "hasOwnProperty" | "isPrototypeOf" | "toLocaleString"
    ) {
        return None;
    }
    match kind {
        Kind::Os => Some(Feature::R2),
        Kind::Fs => Some(Feature::R4),
        // Address syntax checks do not touch the network.
        Kind::Net if matches!(last, "isIP" | "isIPv4" | "isIPv6") => None,
        Kind::Net => Some(Feature::D2),
        Kind::Codec => Some(Feature::E2),
        Kind::Crypto => CIPHERS.contains(&last).then_some(Feature::E2),
        Kind::Buffer => matches!(last, "atob" | "btoa" | "transcode").then_some(Feature::E2),
        Kind::Proc => Some(Feature::P2),
        Kind::ShellJs if first == "exec" => Some(Feature::P2),
        Kind::ShellJs => Some(Feature::R4),
        Kind::Cluster => (last == "fork").then_some(Feature::P2),
        Kind::Workers => (last == "Worker").then_some(Feature::P2),
        Kind::Vm => VM_RUNNERS.contains(&last).then_some(Feature::P4),
    }
}

/// Names that refer to a global object (`window.eval` is `eval`).
pub(super) fn is_global_object(name: &str) -> bool {
    matches!(name, "global" | "globalThis" | "window" | "self" | "GLOBAL")
}

/// The globals the walker follows, as static names (so resolved targets do not allocate for
/// them). Anything else unbound is unknown and fires nothing.
pub(super) fn global(name: &str) -> Option<&'static str> {
    const GLOBALS: &[&str] = &[
        "process",
        "Buffer",
        "eval",
        "Function",
        "fetch",
        "atob",
        "btoa",
        "unescape",
        "setTimeout",
        "setInterval",
        "setImmediate",
        "require",
        "module",
        "String",
        "JSON",
        "WebSocket",
        "XMLHttpRequest",
        "EventSource",
        "navigator",
        "document",
        "$",
        "jQuery",
        "global",
        "globalThis",
        "window",
        "self",
        "GLOBAL",
    ];
    GLOBALS.iter().copied().find(|g| *g == name)
}

/// Whether `s` names a binary-to-text encoding (`Buffer.from(x, 'base64')`,
/// `.toString('hex')`).
pub(super) fn is_text_encoding(s: &str) -> bool {
    ["base64", "base64url", "hex"]
        .iter()
        .any(|e| s.eq_ignore_ascii_case(e))
}

/// Arguments of `Function(...)` that are well-known benign idioms (getting the global object,
/// regenerator-runtime's fallback) and not code loading; every bundle of lodash has one.
pub(super) fn is_function_idiom(args: &[&str]) -> bool {
    matches!(
        args,
        ["return this"] | ["r", "regeneratorRuntime = r"] | ["return this;"]
    )
}
