//! The deployment files (`deploy/`) against the binary they deploy: they parse, every `quiver serve` flag and
//! `QUIVER_*` variable they use is one the binary takes, and the probes and kinds Kubernetes needs are there.
//! (No container engine or Kubernetes API runs on the test machines, so this is the check they get.)

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn serve_help() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver")).args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn deployment_files_parse_and_use_only_flags_the_binary_takes() {
    let files = ["deploy/compose.yaml", "deploy/k8s/nats.yaml", "deploy/k8s/quiver.yaml"];
    let script = "import sys, yaml, json\n\
                  print(json.dumps([list(yaml.safe_load_all(open(f))) for f in sys.argv[1:]]))";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(files.iter().map(|f| root().join(f)))
        .output()
        .expect("python3");
    assert!(out.status.success(), "YAML does not parse: {}", String::from_utf8_lossy(&out.stderr));
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<String> = docs
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .flat_map(|f| f.as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap_or("").to_owned()))
        .collect();
    for want in ["StatefulSet", "Service", "PodDisruptionBudget", "ConfigMap"] {
        assert!(kinds.iter().any(|k| k == want), "no {want} in the manifests: {kinds:?}");
    }
    let compose = &docs[0][0];
    let services = compose["services"].as_object().unwrap();
    assert_eq!(services.keys().filter(|k| k.starts_with("quiver")).count(), 3);
    assert_eq!(services.keys().filter(|k| k.starts_with("nats")).count(), 3);

    let help = serve_help();
    let mut checked = 0;
    for f in ["deploy/compose.yaml", "deploy/k8s/quiver.yaml", "deploy/Dockerfile"] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        // Comments show other programs' command lines.
        let text: String =
            text.lines().filter(|l| !l.trim_start().starts_with('#')).map(|l| format!("{l}\n")).collect();
        for word in text.split(|c: char| c.is_whitespace() || c == '"' || c == '[' || c == ',') {
            if let Some(flag) = word.strip_prefix("--") {
                let flag = flag.split('=').next().unwrap();
                if !flag.starts_with(|c: char| c.is_ascii_lowercase())
                    || !flag.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                {
                    continue;
                }
                // Flags of other programs in the files.
                if [
                    "no-install-recommends",
                    "system",
                    "uid",
                    "home-dir",
                    "shell",
                    "release",
                    "locked",
                    "interval",
                    "timeout",
                    "start-period",
                    "retries",
                    "from",
                ]
                .contains(&flag)
                {
                    continue;
                }
                assert!(help.contains(&format!("--{flag}")), "{f}: `quiver serve` has no --{flag}");
                checked += 1;
            }
            for var in word.split(|c: char| !(c.is_ascii_uppercase() || c == '_')) {
                if var.starts_with("QUIVER_") && var.len() > 7 {
                    assert!(help.contains(&format!("env: {var}")), "{f}: `quiver serve` reads no {var}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 15, "only {checked} flags and variables found: the check is not looking");
    // The probes point at routes the server has.
    let k8s = std::fs::read_to_string(root().join("deploy/k8s/quiver.yaml")).unwrap();
    assert!(k8s.contains("path: /readyz") && k8s.contains("path: /healthz"));
}
