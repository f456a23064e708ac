//! Names that a program of the container, or the OCI runtime, reads as an
//! instruction: an environment variable that makes the dynamic loader
//! load a library, a language runtime load a module, a shell run a file;
//! an annotation that makes the OCI runtime run, write or load something.
//!
//! A pattern never admits such a name: `env = ["*_PATH"]`, written for
//! `CONFIG_PATH`, would admit `LD_LIBRARY_PATH` and `GCONV_PATH`. Only a
//! grant that names it literally does, and `check` says what it does.

use super::{check::Family, model::Patterns};

/// A name, or a family of names under a prefix, and who reads it.
#[derive(Debug)]
pub struct Instruction {
    /// The name, or the prefix of every name of the family.
    name: &'static str,
    /// Whether `name` is a prefix.
    prefix: bool,
    /// Names of a prefix's family, to show which patterns would admit it.
    examples: &'static [&'static str],
    /// Who reads it, and what it makes them do.
    pub does: &'static str,
}

const fn name(name: &'static str, does: &'static str) -> Instruction {
    Instruction {
        name,
        prefix: false,
        examples: &[],
        does,
    }
}

const fn prefix(
    name: &'static str,
    examples: &'static [&'static str],
    does: &'static str,
) -> Instruction {
    Instruction {
        name,
        prefix: true,
        examples,
        does,
    }
}

impl Instruction {
    /// Names of the family: the name itself, or a prefix's examples.
    fn examples(&self) -> &[&'static str] {
        match self.prefix {
            true => self.examples,
            false => std::slice::from_ref(&self.name),
        }
    }
}

/// Environment variables. Sources: ld.so(8) (every `LD_` variable, glibc
/// and musl alike); glibc's `sysdeps/generic/unsecvars.h`, the variables
/// glibc itself drops for setuid programs; bash(1) and sh(1p) (`BASH_ENV`,
/// `ENV`, exported functions); runc and crun, which look the process up
/// in the container's `PATH`; the manuals of the JVM, Node.js, CPython,
/// Perl, Ruby, PHP, Lua, .NET and OpenSSL for what they load at start.
const ENV: &[Instruction] = &[
    prefix(
        "LD_",
        &["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"],
        "the dynamic loader reads it (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT load libraries into every process)",
    ),
    name("GCONV_PATH", "glibc loads character set converters from it"),
    name("GETCONF_DIR", "glibc's getconf runs programs from it"),
    name("GLIBC_TUNABLES", "glibc tunes its allocator and loader by it"),
    name("HOSTALIASES", "glibc's resolver reads host aliases from the file it names"),
    name("LOCALDOMAIN", "glibc's resolver searches the domains it names"),
    name("LOCPATH", "glibc loads locales from it"),
    name("MALLOC_TRACE", "glibc writes an allocation trace to the file it names"),
    name("NIS_PATH", "glibc's NIS+ lookups follow it"),
    name("NLSPATH", "glibc loads message catalogs from it"),
    name("RESOLV_HOST_CONF", "glibc's resolver reads the file it names"),
    name("RES_OPTIONS", "glibc's resolver takes options from it"),
    name("TMPDIR", "glibc and most programs create temporary files in it"),
    name("TZDIR", "glibc loads time zone files from it"),
    name("PATH", "runc, crun and every shell look programs up in it"),
    name("BASH_ENV", "bash runs the file it names before every script"),
    name("ENV", "sh runs the file it names when it starts"),
    prefix(
        "BASH_FUNC_",
        &["BASH_FUNC_ls%%"],
        "bash defines a function from it, which replaces a command",
    ),
    name("SHELLOPTS", "bash sets shell options from it"),
    name("BASHOPTS", "bash sets shell options from it"),
    name("PS4", "bash expands it, running command substitutions, while tracing"),
    name("PROMPT_COMMAND", "bash runs it before every prompt"),
    name("JAVA_TOOL_OPTIONS", "the JVM takes options from it (-javaagent loads code)"),
    name("_JAVA_OPTIONS", "the JVM takes options from it (-javaagent loads code)"),
    name("JDK_JAVA_OPTIONS", "the java launcher takes options from it"),
    name("CLASSPATH", "the JVM loads classes from it"),
    name("NODE_OPTIONS", "Node.js takes options from it (--require loads code)"),
    name("NODE_PATH", "Node.js loads modules from it"),
    name("PYTHONPATH", "CPython imports modules from it"),
    name("PYTHONHOME", "CPython loads its standard library from it"),
    name("PYTHONSTARTUP", "CPython runs the file it names"),
    name("PYTHONUSERBASE", "CPython imports modules from it"),
    name("PYTHONPLATLIBDIR", "CPython loads its standard library from it"),
    name("PYTHONBREAKPOINT", "CPython imports the callable it names"),
    name("PYTHONWARNINGS", "CPython imports the warning categories it names"),
    name("PERL5LIB", "Perl loads modules from it"),
    name("PERLLIB", "Perl loads modules from it"),
    name("PERL5OPT", "Perl takes options from it (-M loads a module)"),
    name("PERL5DB", "Perl runs it as its debugger"),
    name("RUBYLIB", "Ruby loads libraries from it"),
    name("RUBYOPT", "Ruby takes options from it (-r loads a library)"),
    name("PHPRC", "PHP reads its configuration from it"),
    name("PHP_INI_SCAN_DIR", "PHP reads configuration files from it"),
    prefix("LUA_INIT", &["LUA_INIT", "LUA_INIT_5_4"], "Lua runs it, or the file it names"),
    prefix("LUA_PATH", &["LUA_PATH", "LUA_PATH_5_4"], "Lua loads modules from it"),
    prefix("LUA_CPATH", &["LUA_CPATH", "LUA_CPATH_5_4"], "Lua loads native modules from it"),
    name("DOTNET_STARTUP_HOOKS", ".NET runs the assemblies it names"),
    name("DOTNET_ADDITIONAL_DEPS", ".NET loads the dependencies it names"),
    prefix(
        "CORECLR_",
        &["CORECLR_PROFILER_PATH", "CORECLR_ENABLE_PROFILING"],
        ".NET loads the profiler it names",
    ),
    prefix(
        "COR_PROFILER",
        &["COR_PROFILER", "COR_PROFILER_PATH"],
        ".NET loads the profiler it names",
    ),
    name("OPENSSL_CONF", "OpenSSL reads it, and loads the providers it names"),
    name("OPENSSL_MODULES", "OpenSSL loads providers from it"),
    name("OPENSSL_ENGINES", "OpenSSL loads engines from it"),
];

/// Annotations the OCI runtimes read from the container's spec. Sources:
/// crun(1), whose every `run.oci.` annotation configures the runtime
/// (hook output files, seccomp receivers and plugins, the handler, the
/// cgroup); runc's `libcontainer/specconv` (`org.systemd.property.`, any
/// systemd unit property) and its checkpointing (`org.criu.config`);
/// crun's Wasm handlers (`module.wasm.image/variant`); the Kata
/// Containers and gVisor runtime configuration annotations.
const ANNOTATIONS: &[Instruction] = &[
    prefix(
        "run.oci.",
        &["run.oci.hooks.stdout", "run.oci.hooks.stderr", "run.oci.seccomp.receiver", "run.oci.handler"],
        "crun reads it (run.oci.hooks.stdout and .stderr append to any host file, run.oci.seccomp.plugins loads libraries, run.oci.handler picks the handler)",
    ),
    prefix(
        "org.systemd.property.",
        &["org.systemd.property.DeviceAllow"],
        "runc and crun set the systemd unit property it names",
    ),
    prefix("org.criu.", &["org.criu.config"], "runc passes it to criu"),
    name(
        "module.wasm.image/variant",
        "crun runs the container with a Wasm handler",
    ),
    prefix(
        "io.katacontainers.",
        &["io.katacontainers.config.hypervisor.path"],
        "Kata Containers configures the hypervisor from it",
    ),
    prefix(
        "dev.gvisor.",
        &["dev.gvisor.flag.debug"],
        "gVisor sets sandbox flags and mounts from it",
    ),
];

/// The instruction names of a family's keys.
pub fn of(family: Family) -> &'static [Instruction] {
    match family {
        Family::Env | Family::Hooks => ENV,
        Family::Annotations => ANNOTATIONS,
        _ => &[],
    }
}

/// The instruction `key` is, among a family's.
pub fn find(list: &'static [Instruction], key: &str) -> Option<&'static Instruction> {
    list.iter().find(|i| match i.prefix {
        true => key.starts_with(i.name),
        false => key == i.name,
    })
}

/// Whether `patterns` admit `key`: an instruction only if some pattern is
/// the key itself.
pub fn admits(patterns: &Patterns, list: &'static [Instruction], key: &str) -> bool {
    match find(list, key) {
        Some(_) => patterns.sources().iter().any(|p| p == key),
        None => patterns.matches(key),
    }
}

/// Lines for the operator: what each instruction a grant names does, and
/// which instructions its patterns leave out.
pub fn warnings(what: &str, patterns: &Patterns, list: &'static [Instruction]) -> Vec<String> {
    let named = patterns.sources().iter().filter_map(|p| {
        find(list, p).map(|i| format!("{what} grant names {p:?}, an instruction: {}", i.does))
    });
    let left_out: Vec<&str> = list
        .iter()
        .flat_map(Instruction::examples)
        .filter(|e| patterns.matches(e) && !patterns.sources().iter().any(|p| p == *e))
        .copied()
        .collect();
    let left_out = (!left_out.is_empty()).then(|| {
        format!(
            "{what} grant {} admits none of {}: programs read them as instructions; \
             a grant names each it gives",
            patterns.describe(),
            left_out.join(", ")
        )
    });
    named.chain(left_out).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(p: &[&str]) -> Patterns {
        Patterns::new(p).unwrap()
    }

    const LISTS: [&[Instruction]; 2] = [ENV, ANNOTATIONS];

    #[test]
    fn a_pattern_admits_no_instruction_a_literal_name_does() {
        let paths = patterns(&["*_PATH", "NODE_OPTIONS"]);
        assert!(admits(&paths, ENV, "CONFIG_PATH"));
        assert!(!admits(&paths, ENV, "LD_LIBRARY_PATH"));
        assert!(!admits(&paths, ENV, "GCONV_PATH"));
        assert!(!admits(&paths, ENV, "LUA_PATH_5_4"));
        assert!(admits(&paths, ENV, "NODE_OPTIONS"));
        for list in LISTS {
            for name in list.iter().flat_map(Instruction::examples) {
                assert!(!admits(&patterns(&["*"]), list, name), "{name}");
                assert!(admits(&patterns(&[name]), list, name), "{name}");
            }
        }
    }

    #[test]
    fn every_example_is_of_its_own_family() {
        for list in LISTS {
            for i in list {
                assert!(!i.examples().is_empty(), "{i:?}");
                for e in i.examples() {
                    assert_eq!(find(list, e).map(|f| f.name), Some(i.name), "{e}");
                }
            }
        }
    }

    #[test]
    fn crun_siblings_of_named_keys_are_instructions_too() {
        let crun = patterns(&["run.oci.hooks.*", "run.oci.seccomp.*"]);
        for key in ["run.oci.hooks.stderr", "run.oci.seccomp.receiver"] {
            assert!(!admits(&crun, ANNOTATIONS, key), "{key}");
            assert!(admits(&patterns(&[key]), ANNOTATIONS, key), "{key}");
        }
        assert!(admits(
            &patterns(&["example.com/*"]),
            ANNOTATIONS,
            "example.com/x"
        ));
    }

    #[test]
    fn check_says_what_a_grant_names_and_what_its_patterns_leave_out() {
        let lines = warnings("env", &patterns(&["*_PATH", "LD_PRELOAD"]), ENV);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0]
            .starts_with("env grant names \"LD_PRELOAD\", an instruction: the dynamic loader"));
        assert!(
            lines[1].starts_with("env grant [\"*_PATH\", \"LD_PRELOAD\"] admits none of LD_LIBRARY_PATH, GCONV_PATH, NIS_PATH, NODE_PATH"),
            "{}",
            lines[1]
        );
        assert!(warnings("env", &patterns(&["HTTP_PROXY"]), ENV).is_empty());
    }
}
