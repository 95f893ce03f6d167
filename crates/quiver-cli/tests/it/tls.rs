//! HTTPS on the real `quiver serve`: certificates from a CA made in the test (rcgen), a client trusting that CA
//! gets through and one trusting another CA does not, mutual TLS refuses a client without a certificate, and a
//! certificate replaced on disk and reloaded with SIGHUP under load loses no request; a broken reload keeps the
//! old certificate.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    Ca { cert: p.self_signed(&key).unwrap(), key }
}

/// A leaf certificate for 127.0.0.1 (server) or a client, signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, name: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Replaces `path` with `text` at once (write beside, rename), as a certificate manager would.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::File::create(&tmp).unwrap().write_all(text.as_bytes()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// An HTTPS agent trusting `ca_pem`, presenting the client certificate when given.
fn agent(ca_pem: &str, client: Option<&(String, String)>) -> ureq::Agent {
    let roots = ureq::tls::RootCerts::new_with_certs(&[ureq::tls::Certificate::from_pem(ca_pem.as_bytes()).unwrap()]);
    let cert = client.map(|(c, k)| {
        ureq::tls::ClientCert::new_with_certs(
            &[ureq::tls::Certificate::from_pem(c.as_bytes()).unwrap()],
            ureq::tls::PrivateKey::from_pem(k.as_bytes()).unwrap(),
        )
    });
    let tls = ureq::tls::TlsConfig::builder().root_certs(roots).client_cert(cert).build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into()
}

fn get(a: &ureq::Agent, url: &str) -> Result<u16, String> {
    a.get(url).call().map(|r| r.status().as_u16()).map_err(|e| e.to_string())
}

/// The leaf certificate the server presents to a fresh connection (a raw rustls handshake with `client`).
fn presented(addr: &str, ca_pem: &str, client: &(String, String)) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(client.0.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(client.1.as_bytes()).unwrap(),
        )
        .unwrap();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap().to_owned()).unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    conn.peer_certificates().unwrap()[0].to_vec()
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

#[test]
fn https_with_mutual_tls_and_a_reload_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, other_ca, client_ca) = (ca("server CA"), ca("another CA"), ca("client CA"));
    let server_ca_pem = server_ca.cert.pem();
    let first = leaf(&server_ca, "first");
    let client = leaf(&client_ca, "client");
    let stranger = leaf(&other_ca, "stranger");
    let (cert, key, cca) = (dir.path().join("cert.pem"), dir.path().join("key.pem"), dir.path().join("clients.pem"));
    replace(&cert, &first.0);
    replace(&key, &first.1);
    replace(&cca, &client_ca.cert.pem());

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quiver"));
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--tls-client-ca")
        .arg(&cca)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let (mut child, addr, log) = crate::spawn_serve_command(cmd);
    let base = format!("https://{addr}");
    let good = agent(&server_ca_pem, Some(&client));
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&good, &format!("{base}/readyz")) != Ok(200) {
        assert!(Instant::now() < deadline, "not ready over HTTPS in time");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A trusted server and a certified client: the API works.
    let put = good
        .put(&format!("{base}/collections/secure"))
        .header("content-type", "application/json")
        .send(r#"{"vectors": {"size": 2, "distance": "Dot"}}"#)
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    assert_eq!(presented(&addr, &server_ca_pem, &client), der(&first.0));

    // The CLI (quiver-client) over HTTPS: the private CA and the client certificate from the environment.
    let files = [("ca.pem", &server_ca_pem), ("client.pem", &client.0), ("client-key.pem", &client.1)];
    for (name, text) in files {
        replace(&dir.path().join(name), text);
    }
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (ca_file, client_file, client_key) = (path("ca.pem"), path("client.pem"), path("client-key.pem"));
    let tls_env = [
        ("QUIVER_CA_CERT", ca_file.as_str()),
        ("QUIVER_CLIENT_CERT", client_file.as_str()),
        ("QUIVER_CLIENT_KEY", client_key.as_str()),
    ];
    let out = crate::run_quiver(&["collections", "--url", &base], &tls_env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("secure"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let out = crate::run_quiver(&["collections", "--url", &base], &tls_env[..1]);
    assert!(!out.status.success(), "listed without a client certificate");

    // Refused: a client that trusts another CA, a client without a certificate, one whose certificate chains to
    // a CA the server does not trust, and plain HTTP.
    let e = get(&agent(&other_ca.cert.pem(), Some(&client)), &format!("{base}/readyz")).unwrap_err();
    assert!(e.to_lowercase().contains("certificate") || e.to_lowercase().contains("tls"), "{e}");
    assert!(get(&agent(&server_ca_pem, None), &format!("{base}/collections")).is_err(), "no client certificate");
    assert!(get(&agent(&server_ca_pem, Some(&stranger)), &format!("{base}/collections")).is_err(), "stranger");
    let plain = crate::serve::http(&addr, "GET", "/readyz", None);
    assert_ne!(plain.0, 200, "plain HTTP answered: {plain:?}");

    // Under load from two clients (new connections every few requests), the certificate is replaced on disk and
    // reloaded: every request succeeds, and new connections get the new certificate.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::<String>::new())));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, done, failed) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&failed));
            let (ca_pem, client, url) = (server_ca_pem.clone(), client.clone(), format!("{base}/collections/secure"));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let a = agent(&ca_pem, Some(&client));
                    for _ in 0..5 {
                        match get(&a, &url) {
                            Ok(200) => {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                            other => failed.lock().unwrap().push(format!("{other:?}")),
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let second = leaf(&server_ca, "second");
    replace(&key, &second.1);
    replace(&cert, &second.0);
    let hup = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while presented(&addr, &server_ca_pem, &client) != der(&second.0) {
        assert!(Instant::now() < deadline, "the new certificate was not served after SIGHUP");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let failed = failed.lock().unwrap();
    assert!(
        failed.is_empty(),
        "{} requests failed across the reload: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(done.load(Ordering::Relaxed) > 20, "too little load: {}", done.load(Ordering::Relaxed));

    // A broken reload (a key that is not a key) is logged and the second certificate stays.
    replace(&key, "not a key");
    Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("TLS reload failed") => break,
            Ok(_) => {}
            Err(_) => panic!("no log line about the failed reload"),
        }
    }
    assert_eq!(presented(&addr, &server_ca_pem, &client), der(&second.0));
    assert_eq!(get(&good, &format!("{base}/collections/secure")), Ok(200));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn bad_tls_settings_stop_the_server_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-key.pem");
    let c = ca("ca");
    let (cert_pem, _) = leaf(&c, "s");
    let cert = dir.path().join("cert.pem");
    replace(&cert, &cert_pem);
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["serve", "--bind", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&missing)
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing-key.pem"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["serve", "--bind", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls_key"), "{err}");
}
