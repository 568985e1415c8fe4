//! Gateway profiles (docs/protocol.md, "Gateway profiles"): the extra headers each
//! kind of gateway wants.

use crate::config::{Gateway, Profile};
use crate::crypto::gateway_sign::{csb_signature, tif_signature};
use crate::crypto::nonce;

/// The signed headers for one request at Unix time `now_ms`.
pub fn headers(g: &Gateway, now_ms: i64) -> Vec<(&'static str, String)> {
    match g.profile {
        Profile::Plain => Vec::new(),
        Profile::Tif => {
            let ts = (now_ms / 1000).to_string();
            let nonce = nonce();
            let sig = tif_signature(&ts, g.paas_token.expose(), &nonce);
            vec![
                ("x-tif-paasid", g.paas_id.clone()),
                ("x-tif-timestamp", ts),
                ("x-tif-nonce", nonce),
                ("x-tif-signature", sig),
            ]
        }
        Profile::Csb => {
            let ts = now_ms.to_string();
            let sig = csb_signature(
                g.secret_key.expose(),
                &[
                    ("_api_name", &g.api_name),
                    ("_api_version", &g.api_version),
                    ("_api_access_key", &g.access_key),
                    ("_api_timestamp", &ts),
                ],
            );
            vec![
                ("_api_name", g.api_name.clone()),
                ("_api_version", g.api_version.clone()),
                ("_api_access_key", g.access_key.clone()),
                ("_api_timestamp", ts),
                ("_api_signature", sig),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tif_headers_carry_id_seconds_and_signature() {
        let g = Gateway {
            profile: Profile::Tif,
            paas_id: "pid".into(),
            paas_token: serde_json::from_str("\"tok\"").unwrap(),
            ..Gateway::default()
        };
        let h = headers(&g, 1_700_000_000_123);
        let get = |k: &str| h.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("x-tif-paasid"), "pid");
        assert_eq!(get("x-tif-timestamp"), "1700000000");
        assert_eq!(get("x-tif-signature"), tif_signature("1700000000", "tok", &get("x-tif-nonce")));
        assert!(!h.iter().any(|(_, v)| v.contains("tok") && v.len() == 3));
    }

    #[test]
    fn csb_headers_use_milliseconds() {
        let g = Gateway {
            profile: Profile::Csb,
            api_name: "n".into(),
            access_key: "ak".into(),
            secret_key: serde_json::from_str("\"sk\"").unwrap(),
            ..Gateway::default()
        };
        let h = headers(&g, 1_700_000_000_123);
        assert!(h.contains(&("_api_timestamp", "1700000000123".to_string())));
        assert_eq!(h.len(), 5);
    }
}
