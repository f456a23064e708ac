//! The command line, run as a person would.

use std::process::Command;

use crate::guests::{plugin_dir, EXAMPLES};

fn nri_wasm(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_nri-wasm"))
        .args(args)
        .env("NRI_WASM_LOG", "error")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_refuses_device_grants_that_multiply_or_pretend_to_be_read_only() {
    let crossed = r#"devices = [{ path = ["/dev/nri-null", "/dev/loop0"], types = ["c", "b"], major = [1, 7], minor = [3, 0] }]"#;
    let read_only = r#"devices = [{ path = ["/dev/sdb"], types = ["b"], major = [8], minor = [16], max-file-mode = 0o444 }]"#;
    for (grants, said) in [
        (crossed, "admit all 8 combinations"),
        (read_only, "does not make a device read-only"),
    ] {
        let config = format!("[plugins.env-injector]\ngrants = {{ {grants} }}\n");
        let plugins = plugin_dir(&["20-env-injector.wasm"], Some(&config));
        let (ok, _, stderr) = nri_wasm(&[
            "check",
            plugins
                .path()
                .join("20-env-injector.wasm")
                .to_str()
                .unwrap(),
            "--config",
            plugins.path().join("nri-wasm.toml").to_str().unwrap(),
        ]);
        assert!(!ok, "{grants}");
        assert!(stderr.contains(said), "{stderr}");
    }
}

#[test]
fn check_says_what_instructions_switches_and_fail_closed_give() {
    let config = r#"[plugins.env-injector]
failure-policy = "fail-closed"
grants = { env = ["*_PATH", "NODE_OPTIONS"], seccomp = true, scheduler = { policies = ["batch"], nice = [0, 19] } }
"#;
    let plugins = plugin_dir(&["20-env-injector.wasm"], Some(config));
    let plugin = plugins.path().join("20-env-injector.wasm");
    let config = plugins.path().join("nri-wasm.toml");
    let (ok, stdout, stderr) = nri_wasm(&[
        "check",
        plugin.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    for said in [
        "warning:    env grant names \"NODE_OPTIONS\", an instruction: Node.js takes options from it",
        "warning:    env grant [\"*_PATH\", \"NODE_OPTIONS\"] admits none of LD_LIBRARY_PATH, GCONV_PATH",
        "warning:    seccomp = true grants the whole seccomp policy",
        "warning:    failure-policy = \"fail-closed\" is a veto over its scope",
    ] {
        assert!(stdout.contains(said), "{said}\n{stdout}");
    }
    let switch = "[plugins.env-injector]\ngrants = { scheduler = true }\n";
    let plugins = plugin_dir(&["20-env-injector.wasm"], Some(switch));
    let (ok, _, stderr) = nri_wasm(&[
        "check",
        plugins
            .path()
            .join("20-env-injector.wasm")
            .to_str()
            .unwrap(),
        "--config",
        plugins.path().join("nri-wasm.toml").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("scheduler is granted by its policies and bounds, not by a switch"),
        "{stderr}"
    );
}

#[test]
fn check_describes_a_plugin_and_what_it_is_granted() {
    let config = "[plugins.env-injector]\ngrants = { env = [\"NRI_WASM\"] }\n";
    let plugins = plugin_dir(&["20-env-injector.wasm"], Some(config));
    let plugin = plugins.path().join("20-env-injector.wasm");
    let config = plugins.path().join("nri-wasm.toml");
    let (ok, stdout, stderr) = nri_wasm(&[
        "check",
        plugin.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("guest:      20-env-injector"), "{stdout}");
    assert!(
        stdout.contains("exports:    lifecycle, pod-events, container-events, adjuster, validator"),
        "{stdout}"
    );
    assert!(
        stdout.contains("imports:    nri:plugin/types@0.1.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  grants:\n    env = [\"NRI_WASM\"]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  read: nothing"), "{stdout}");
    assert!(stdout.contains("  scope: all pods"), "{stdout}");
}

#[test]
fn check_of_a_file_that_is_not_a_component_fails_with_one_line() {
    let plugins = plugin_dir(&[], None);
    let file = plugins.path().join("10-junk.wasm");
    std::fs::write(&file, b"not wasm at all").unwrap();
    let (ok, stdout, stderr) = nri_wasm(&["check", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(stdout.is_empty());
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("nri-wasm: ")
            && lines[0].contains("10-junk.wasm: is not a valid Wasm component"),
        "{stderr}"
    );
}

#[test]
fn test_runs_an_event_through_a_plugin_with_its_grants() {
    let config = r#"
[plugins.ulimit-adjuster]
read = { annotations = ["ulimits.noderesource.dev/*", "ulimits.nri.containerd.io/*"] }
grants = { rlimits = { RLIMIT_NOFILE = 2048 } }
"#;
    let plugins = plugin_dir(&["30-ulimit-adjuster.wasm"], Some(config));
    let plugin = plugins.path().join("30-ulimit-adjuster.wasm");
    let config = plugins.path().join("nri-wasm.toml");
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../guest-examples/events/create-container.json"
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["test", plugin.to_str().unwrap(), "--event", event];
        args.extend_from_slice(extra);
        let output = Command::new(env!("CARGO_BIN_EXE_nri-wasm"))
            .args(&args)
            .env("NRI_WASM_LOG", "error")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };

    // Without the configuration it may not read the annotations it
    // declares it reads: it does not load, rather than run blind.
    let (code, stdout) = run(&[]);
    assert_eq!(code, Some(1), "{stdout}");

    // With it, it reads the annotation, but the hard limit 4096 is above
    // the granted 2048: refused, exit status 2.
    let (code, stdout) = run(&["--config", config.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(2), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let create = &report["calls"][1];
    assert_eq!(create["event"], "CreateContainer");
    assert_eq!(create["refusals"][0]["family"], "rlimits", "{report:#}");
    assert_eq!(create["refusals"][0]["grant"], "RLIMIT_NOFILE up to 2048");
    assert_eq!(
        report["reply"],
        serde_json::json!({}),
        "nothing reaches the runtime"
    );
}

#[test]
fn test_with_a_bad_event_file_says_what_is_wrong() {
    let plugins = plugin_dir(&["30-ulimit-adjuster.wasm"], None);
    let plugin = plugins.path().join("30-ulimit-adjuster.wasm");
    let event = plugins.path().join("event.json");
    std::fs::write(
        &event,
        "{\"event\": \"CreateContainer\",\n \"request\": {\n  \"pod\": {\"nmae\": \"x\"}}}",
    )
    .unwrap();
    let (ok, _, stderr) = nri_wasm(&[
        "test",
        plugin.to_str().unwrap(),
        "--event",
        event.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("\"request\"") && stderr.contains("Unknown field name: `nmae` at 3:11"),
        "the field is named where it is in the file: {stderr}"
    );
    std::fs::write(&event, r#"{"event": "ValidateContainer", "request": {}}"#).unwrap();
    let (ok, _, stderr) = nri_wasm(&[
        "test",
        plugin.to_str().unwrap(),
        "--event",
        event.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("\"event\": unknown event \"ValidateContainer\"; one of: RunPodSandbox,"),
        "the key at fault is named: {stderr}"
    );
}

#[test]
fn a_plugin_file_without_its_index_is_refused_with_the_rule() {
    let plugins = plugin_dir(&["20-env-injector.wasm"], None);
    let unnumbered = plugins.path().join("env-injector.wasm");
    std::fs::rename(plugins.path().join("20-env-injector.wasm"), &unnumbered).unwrap();
    let (ok, _, stderr) = nri_wasm(&["check", unnumbered.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("not named NN-name.wasm"), "{stderr}");
}

#[test]
fn demo_shows_what_guests_changed_and_what_was_refused() {
    let config = include_str!("../../guest-examples/nri-wasm.toml");
    let plugins = plugin_dir(&EXAMPLES, Some(config));
    let cache = crate::guests::compile_cache();
    let (ok, stdout, stderr) = nri_wasm(&[
        "demo",
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    for applied in [
        "+ env NRI_WASM=1",
        "+ rlimit RLIMIT_NOFILE soft 1024 hard 4096",
        "+ device /dev/nri-null (c 1:3)",
        "+ createRuntime hook /usr/local/bin/audit-hook",
    ] {
        assert!(stdout.contains(applied), "no {applied:?} in\n{stdout}");
    }
    assert!(
        stdout.lines().any(|l| l.contains("30-ulimit-adjuster")
            && l.contains("REFUSED rlimits \"RLIMIT_NOFILE soft 1048576 hard 4194304\"")),
        "{stdout}"
    );
    // Each guest's answer reads as the summary does, not as protobuf text.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("15-pod-metadata") && l.contains("+ env POD_NAME=")),
        "{stdout}"
    );
    assert!(!stdout.contains("env {key:"), "{stdout}");
    // Then one plugin is adopted: shadow, suggested grants, enforced.
    let (_, adopted) = stdout
        .split_once("Adopting 20-env-injector")
        .unwrap_or_else(|| panic!("no adoption in\n{stdout}"));
    let (shadow, enforced) = adopted.split_once("Reviewed and enforced:").unwrap();
    for line in [
        "shadow, would be REFUSED: env \"NRI_WASM\" is not granted",
        "env = [\"NRI_WASM\"]  # 1 of",
    ] {
        assert!(shadow.contains(line), "no {line:?} in\n{shadow}");
    }
    let created = shadow.split("the runtime creates it with:").nth(1).unwrap();
    assert!(created.trim_start().starts_with("no change"), "{shadow}");
    assert!(enforced.contains("+ env NRI_WASM=1"), "{enforced}");
}

#[test]
fn a_refused_answer_is_shown_with_the_grant_lines_that_would_admit_it() {
    let config = "[plugins.env-injector]\nconfig = \"env NRI_WASM=1\"\n";
    let plugins = plugin_dir(&["20-env-injector.wasm"], Some(config));
    let plugin = plugins.path().join("20-env-injector.wasm");
    let config = plugins.path().join("nri-wasm.toml");
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../guest-examples/events/create-container.json"
    );
    let cache = crate::guests::compile_cache();
    let test = |json: bool| {
        let mut args = vec![
            "test",
            plugin.to_str().unwrap(),
            "--event",
            event,
            "--config",
            config.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        nri_wasm(&args).1
    };
    let text = test(false);
    assert!(
        text.contains("admitted by, in [plugins.NAME.grants]:")
            && text.contains("env = [\"NRI_WASM\"]"),
        "{text}"
    );
    let report: serde_json::Value = serde_json::from_str(&test(true)).unwrap();
    let refused = report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["refusals"].is_array())
        .unwrap_or_else(|| panic!("no refused call in {report:#}"));
    assert_eq!(
        refused["admitted-by"]["env"], "[\"NRI_WASM\"]",
        "{report:#}"
    );
}

#[test]
fn a_section_named_after_the_module_not_the_file_stops_the_daemon_naming_the_plugin() {
    let config = "[plugins.env_injector]\ngrants = { env = [\"NRI_WASM\"] }\n";
    let plugins = plugin_dir(&["20-env-injector.wasm"], Some(config));
    let socket = plugins.path().join("no.sock");
    let (ok, _, stderr) = nri_wasm(&[
        "run",
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--socket",
        socket.to_str().unwrap(),
        "--status-address",
        "off",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("section [plugins.env_injector] names no plugin")
            && stderr.contains("did you mean [plugins.env-injector]?"),
        "{stderr}"
    );
}

#[test]
fn a_second_test_of_a_plugin_compiles_nothing() {
    let config = "[plugins.env-injector]\ngrants = { env = [\"NRI_WASM\"] }\n";
    let plugins = plugin_dir(&["20-env-injector.wasm"], Some(config));
    let plugin = plugins.path().join("20-env-injector.wasm");
    let config = plugins.path().join("nri-wasm.toml");
    let cache = plugins.path().join("cache");
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../guest-examples/events/create-container.json"
    );
    let test = || {
        let output = Command::new(env!("CARGO_BIN_EXE_nri-wasm"))
            .args(["test", plugin.to_str().unwrap(), "--event", event])
            .args(["--config", config.to_str().unwrap()])
            .args(["--cache-dir", cache.to_str().unwrap()])
            .env("NRI_WASM_LOG", "info")
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    const COMPILED: &str = "compiled the guest: it was not in the compile cache";
    assert!(test().contains(COMPILED), "the first run compiles");
    let second = test();
    assert!(
        !second.contains(COMPILED),
        "the second compiled again: {second}"
    );
}

#[test]
fn a_reader_that_stops_reading_ends_the_demo_quietly() {
    use std::io::{BufRead, BufReader};
    let config = include_str!("../../guest-examples/nri-wasm.toml");
    let plugins = plugin_dir(&EXAMPLES, Some(config));
    let mut child = Command::new(env!("CARGO_BIN_EXE_nri-wasm"))
        .args(["demo", "--plugins", plugins.path().to_str().unwrap()])
        .arg("--cache-dir")
        .arg(crate::guests::compile_cache())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // Like `head -1`: one line, then the pipe is closed.
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn every_sample_event_runs_through_a_plugin() {
    let config = include_str!("../../guest-examples/nri-wasm.toml");
    let plugins = plugin_dir(&["10-logger.wasm"], Some(config));
    let plugin = plugins.path().join("10-logger.wasm");
    let config = plugins.path().join("nri-wasm.toml");
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/events");
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&events).unwrap() {
        let event = entry.unwrap().path();
        let text = std::fs::read_to_string(&event).unwrap();
        let kind: serde_json::Value = serde_json::from_str(&text).unwrap();
        kinds.insert(kind["event"].as_str().unwrap().to_string());
        let (ok, stdout, stderr) = nri_wasm(&[
            "test",
            plugin.to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ]);
        assert!(ok, "{}: {stdout}{stderr}", event.display());
    }
    assert_eq!(kinds.len(), 14, "a sample of every NRI event: {kinds:?}");
}

#[test]
fn test_prints_a_template_of_every_event() {
    let (ok, stdout, stderr) =
        nri_wasm(&["test", "--event-template", "ValidateContainerAdjustment"]);
    assert!(ok, "{stderr}");
    let template: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(template["event"], "ValidateContainerAdjustment");
    let (ok, _, stderr) = nri_wasm(&["test", "--event-template", "Validate"]);
    assert!(
        !ok && stderr.contains("one of: RunPodSandbox, "),
        "{stderr}"
    );
}

#[test]
fn annotate_declares_what_the_manifest_says_and_check_shows_it() {
    let plugins = plugin_dir(&["20-env-injector.wasm"], None);
    let plugin = plugins.path().join("20-env-injector.wasm");
    let manifest = plugins.path().join("plugin.toml");
    let plugin = plugin.to_str().unwrap();
    let annotate = |reads: &str| {
        let text =
            format!("index = \"20\"\nname = \"env-injector\"\nworld = \"plugin\"\n{reads}\n");
        std::fs::write(&manifest, text).unwrap();
        nri_wasm(&["annotate", plugin, "--manifest", manifest.to_str().unwrap()])
    };
    let (ok, stdout, stderr) = annotate("reads = { annotations = [\"team/*\"] }");
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("declares it reads: annotations = [\"team/*\"]"),
        "{stdout}"
    );
    // Annotating again replaces the declaration.
    let (ok, _, stderr) = annotate("reads = { mounts = true }");
    assert!(ok, "{stderr}");
    let config = plugins.path().join("nri-wasm.toml");
    std::fs::write(
        &config,
        "[plugins.env-injector]\nread = { mounts = true }\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = nri_wasm(&["check", plugin, "--config", config.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("  declares it reads:\n    mounts = true\n  grants"),
        "{stdout}"
    );
    // A declaration nri-wasm could not judge is refused when written.
    let (ok, _, stderr) = annotate("reads = { lables = [\"team\"] }");
    assert!(!ok);
    assert!(
        stderr.contains("plugin.toml: reads: unknown field `lables`"),
        "{stderr}"
    );
}

#[test]
fn new_refuses_a_bad_name_and_a_directory_in_use() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("p");
    let dir = dir.to_str().unwrap();
    let (ok, _, stderr) = nri_wasm(&["new", "--lang", "js", "Team_Env", "--dir", dir]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot name a plugin \"Team_Env\": a new plugin's name is lowercase"),
        "{stderr}"
    );
    let (ok, _, stderr) = nri_wasm(&["new", "--lang", "js", "team", "--index", "5", "--dir", dir]);
    assert!(!ok);
    assert!(stderr.contains("with index \"5\""), "{stderr}");
    let (ok, stdout, stderr) = nri_wasm(&["new", "--lang", "js", "team", "--dir", dir]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("./build.sh"), "{stdout}");
    let written = std::fs::read_to_string(work.path().join("p/nri-wasm.toml")).unwrap();
    assert!(written.contains("[plugins.team]"), "{written}");
    let (ok, _, stderr) = nri_wasm(&["new", "--lang", "rust", "team", "--dir", dir]);
    assert!(!ok);
    assert!(stderr.contains("exists and is not empty"), "{stderr}");
}

/// A scenario file of the sample events, by their file names.
fn scenario(events: &[&str]) -> String {
    let events: Vec<String> = events
        .iter()
        .map(|name| {
            let file = format!(
                "{}/../guest-examples/events/{name}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::read_to_string(file).unwrap()
        })
        .collect();
    format!("[\n{}\n]\n", events.join(",\n"))
}

#[test]
fn demo_plays_a_scenario_of_your_own() {
    let config = "[plugins.logger]\nread = { annotations = [\"io.kubernetes.cri.image-name\"] }\n\n[plugins.env-injector]\nconfig = \"env NRI_WASM=1\"\ngrants = { env = [\"NRI_WASM\"] }\n\n[plugins.memory-clamp]\nconfig = \"max=1Gi default=256Mi\"\ngrants = { memory = { limit = [1, 1073741824] } }\n";
    let plugins = plugin_dir(
        &[
            "10-logger.wasm",
            "20-env-injector.wasm",
            "35-memory-clamp.wasm",
        ],
        Some(config),
    );
    let events = plugins.path().join("scenario.json");
    let demo = |scenario: String| {
        std::fs::write(&events, scenario).unwrap();
        nri_wasm(&[
            "demo",
            "--plugins",
            plugins.path().to_str().unwrap(),
            "--cache-dir",
            crate::guests::compile_cache().to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
        ])
    };
    let (ok, stdout, stderr) = demo(scenario(&[
        "run-pod-sandbox",
        "create-container",
        "start-container",
        "update-container",
        "stop-container",
        "remove-container",
        "stop-pod-sandbox",
        "remove-pod-sandbox",
    ]));
    assert!(ok, "{stdout}\n{stderr}");
    for line in [
        "RunPodSandbox default/web",
        "CreateContainer 6f1c0d2a9e1b/nginx",
        "  the runtime creates it with:\n    + env NRI_WASM=1",
        "StartContainer 8d3e4f5a6b7c (and PostStartContainer)",
        "UpdateContainer 8d3e4f5a6b7c",
        "RemovePodSandbox default/web",
        "  10-logger              ",
    ] {
        assert!(stdout.contains(line), "no {line:?} in\n{stdout}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("35-memory-clamp") && l.contains("+ memory limit 256 MiB")),
        "{stdout}"
    );
    // What the runtime sends on its own is not a step; a container needs
    // its pod.
    let (ok, _, stderr) = demo(scenario(&[
        "run-pod-sandbox",
        "validate-container-adjustment",
    ]));
    assert!(!ok);
    assert!(
        stderr.contains("event 2 of the scenario, ValidateContainerAdjustment: the runtime sends ValidateContainerAdjustment itself"),
        "{stderr}"
    );
    let (ok, _, stderr) = demo(scenario(&["create-container"]));
    assert!(!ok);
    assert!(
        stderr.contains("the runtime has no pod \"6f1c0d2a9e1b\"; run it first"),
        "{stderr}"
    );
    let (ok, _, stderr) =
        demo("[{\"event\": \"StartContainer\", \"request\": {\"containr\": {}}}]".into());
    assert!(!ok);
    assert!(
        stderr.contains("event 1: \"request\": not a valid StartContainerRequest: Unknown field name: `containr` at 1:42"),
        "{stderr}"
    );
}

#[test]
fn build_refuses_a_manifest_whose_name_would_leave_its_directory() {
    let work = tempfile::tempdir().unwrap();
    for (index, name) in [("50", "../escape"), ("/tmp/x", "plugin"), ("50", "")] {
        let manifest = format!(
            "index = {index:?}\nname = {name:?}\nworld = \"adjusting\"\nlanguage = \"c\"\nreads = {{}}\n"
        );
        std::fs::write(work.path().join("plugin.toml"), manifest).unwrap();
        let (ok, _, stderr) = nri_wasm(&["build", work.path().to_str().unwrap()]);
        assert!(!ok);
        assert!(
            stderr.contains("a plugin is named by a two-digit index and a name of letters"),
            "{stderr}"
        );
    }
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 1);
}
