//! `mi-sim`: run the platform simulator on its own, e.g.
//! `mi-sim --addr 127.0.0.1:8080 --profile tif --paas-id X --paas-token Y`.

use mi_sim::{Profile, Sim, SimConfig};

const USAGE: &str = "usage: mi-sim [--addr HOST:PORT] [--profile plain|tif|csb] [--paas-id ID] [--paas-token TOKEN]
              [--api-name NAME] [--access-key KEY] [--secret-key SECRET]
              [--fixmedins CODE[,CODE...]] [--time-window-s N] [--infcode-as-string]
              [--wrap-answers [--wrap-data-as-string]]   (a tif gateway that wraps answers)
              [--encrypt-answers]   (Jilin: output Base64 SM4, SM2-signed in cainfo)
              [--tls-cert CHAIN.pem --tls-key KEY.pem]   (serve HTTPS)
              a province's variant:
              [--url-style single|append_infno|per_infno [--paths FILE.json]]
                  (FILE: {\"1101\": \"/fsi/api/...\"}, or a region preset with gateway.paths)
              [--sign-in national|guangzhou [--sign-in-userid ID --sign-in-password PW]]
              [--require-field NAME]...   [--sm3-cainfo]";

fn main() {
    let mut cfg = SimConfig::default();
    let mut addr = "127.0.0.1:8080".to_string();
    let (mut url_style, mut paths) = ("single".to_string(), Default::default());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| fail(&format!("{a} needs a value")));
        match a.as_str() {
            "--addr" => addr = val(),
            "--profile" => {
                cfg.profile = Profile::parse(&val()).unwrap_or_else(|| fail("--profile is plain, tif or csb"))
            }
            "--paas-id" => cfg.paas_id = val(),
            "--paas-token" => cfg.paas_token = val(),
            "--api-name" => cfg.api_name = val(),
            "--access-key" => cfg.access_key = val(),
            "--secret-key" => cfg.secret_key = val(),
            "--fixmedins" => cfg.fixmedins_codes = val().split(',').map(str::to_owned).collect(),
            "--time-window-s" => {
                cfg.time_window_s = val().parse().unwrap_or_else(|_| fail("--time-window-s takes seconds"))
            }
            "--infcode-as-string" => cfg.infcode_as_string = true,
            "--wrap-answers" => cfg.wrap_answers = true,
            "--wrap-data-as-string" => cfg.wrap_data_as_string = true,
            "--encrypt-answers" => cfg.encrypt_answers = true,
            "--tls-cert" => cfg.tls_cert_pem = read(&val()),
            "--tls-key" => cfg.tls_key_pem = read(&val()),
            "--url-style" => url_style = val(),
            "--paths" => paths = read_paths(&val()),
            "--sign-in" => {
                cfg.variant.sign_in = match val().as_str() {
                    "national" => mi_sim::variants::SignIn::National,
                    "guangzhou" => mi_sim::variants::SignIn::Guangzhou,
                    _ => fail("--sign-in is national or guangzhou"),
                }
            }
            "--sign-in-userid" => cfg.variant.userid = val(),
            "--sign-in-password" => cfg.variant.password = val(),
            "--require-field" => cfg.variant.required_fields.push(val()),
            "--sm3-cainfo" => cfg.variant.sm3_cainfo = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    cfg.variant.urls = mi_sim::variants::Urls::parse(&url_style, paths)
        .unwrap_or_else(|| fail("--url-style is single, append_infno or per_infno"));
    if cfg.tls_cert_pem.is_empty() != cfg.tls_key_pem.is_empty() {
        fail("--tls-cert and --tls-key go together");
    }
    let sim = Sim::start(cfg, &addr).unwrap_or_else(|e| fail(&format!("cannot serve on {addr}: {e}")));
    let mut said = vec![format!("mi-sim listening on {} (profile {:?})", sim.service_url(), sim.config().profile)];
    // The credentials a config must carry for this gateway: test values of the
    // simulator's own, printed so a newcomer can write that config.
    let c = sim.config();
    match c.profile {
        Profile::Plain => {}
        Profile::Tif => said.push(format!(
            "tif gateway: config \"gateway\": {{\"profile\": \"tif\", \"paas_id\": \"{}\", \"paas_token\": \"{}\"}}",
            c.paas_id, c.paas_token
        )),
        Profile::Csb => said.push(format!(
            "csb gateway: config \"gateway\": {{\"profile\": \"csb\", \"api_name\": \"{}\", \"access_key\": \"{}\", \"secret_key\": \"{}\"}}",
            c.api_name, c.access_key, c.secret_key
        )),
    }
    if sim.config().encrypt_answers {
        // What the hospital's config names as gateway.platform_public_key.
        said.push(format!("answers signed by SM2 public key {}", sim.config().answer_public_key()));
    }
    // Flushed at once, so a parent reading our stdout learns the port; a parent that
    // stopped reading after the first line does not stop the simulator (println!
    // would panic on the closed pipe).
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", said.join("\n")).and_then(|()| out.flush());
    drop(out);
    loop {
        std::thread::park();
    }
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| fail(&format!("cannot read {path}: {e}")))
}

/// infno -> path from a JSON object, or from a region preset's `gateway.paths`.
fn read_paths(path: &str) -> std::collections::BTreeMap<String, String> {
    let v: serde_json::Value = serde_json::from_slice(&read(path)).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    let map = v.pointer("/gateway/paths").unwrap_or(&v);
    let Some(map) = map.as_object() else { fail(&format!("{path} is not a JSON object of infno -> path")) };
    map.iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, p)| (k.clone(), p.as_str().unwrap_or_else(|| fail(&format!("{path}: {k} is not a path"))).into()))
        .collect()
}

fn fail(msg: &str) -> ! {
    eprintln!("mi-sim: {msg}\n{USAGE}");
    std::process::exit(2);
}
