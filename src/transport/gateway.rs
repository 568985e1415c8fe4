//! Gateway profiles (docs/protocol.md, "Gateway profiles"): the extra headers each
//! kind of gateway wants.

use crate::config::{Gateway, Profile};
use crate::crypto::gateway_sign::{csb_signature, query_pairs, tif_signature};
use crate::crypto::{decimal_nonce, nonce};

/// The signed headers for one request to `url` at Unix time `now_ms`.
pub fn headers(g: &Gateway, url: &str, now_ms: i64) -> Vec<(&'static str, String)> {
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
            let mut sent = vec![
                ("_api_name", g.api_name.clone()),
                ("_api_version", g.api_version.clone()),
                ("_api_access_key", g.access_key.clone()),
                ("_api_timestamp", now_ms.to_string()),
            ];
            if g.csb_nonce {
                // Fresh per send: a gateway that checks nonces refuses one it has seen.
                sent.push(("_api_nonce", decimal_nonce()));
            }
            // The gateway checks every `_api_*` header and the URL's query parameters.
            let query = query_pairs(url);
            let signed: Vec<(&str, &str)> = sent
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .chain(query.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .collect();
            let sig = csb_signature(g.secret_key.expose(), &signed);
            sent.push(("_api_signature", sig));
            sent
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
        let h = headers(&g, "http://gw/x", 1_700_000_000_123);
        let get = |k: &str| h.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("x-tif-paasid"), "pid");
        assert_eq!(get("x-tif-timestamp"), "1700000000");
        assert_eq!(get("x-tif-signature"), tif_signature("1700000000", "tok", &get("x-tif-nonce")));
        assert!(!h.iter().any(|(_, v)| v.contains("tok") && v.len() == 3));
    }

    #[test]
    fn csb_headers_use_milliseconds_and_sign_the_nonce_and_the_query() {
        let mut g = Gateway {
            profile: Profile::Csb,
            api_name: "n".into(),
            access_key: "ak".into(),
            secret_key: serde_json::from_str("\"sk\"").unwrap(),
            ..Gateway::default()
        };
        let h = headers(&g, "http://gw/x", 1_700_000_000_123);
        assert!(h.contains(&("_api_timestamp", "1700000000123".to_string())));
        assert_eq!(h.len(), 5, "no nonce unless asked: {h:?}");
        let sig = |h: &[(&str, String)]| h.iter().find(|(k, _)| *k == "_api_signature").unwrap().1.clone();
        let pairs = |h: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
            h.iter().filter(|(k, _)| *k != "_api_signature").cloned().collect()
        };
        // A query parameter is signed, decoded.
        let q = headers(&g, "http://gw/x?region=%E5%90%89%E6%9E%97", 1_700_000_000_123);
        let owned = pairs(&q);
        let mut signed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        signed.push(("region", "吉林"));
        assert_eq!(sig(&q), csb_signature("sk", &signed));
        assert_ne!(sig(&q), sig(&h));
        // With csb_nonce: a fresh decimal `_api_nonce` per send, signed.
        g.csb_nonce = true;
        let (a, b) = (headers(&g, "http://gw/x", 1), headers(&g, "http://gw/x", 1));
        let nonce = |h: &[(&str, String)]| h.iter().find(|(k, _)| *k == "_api_nonce").unwrap().1.clone();
        assert_ne!(nonce(&a), nonce(&b));
        assert!(nonce(&a).parse::<i64>().is_ok());
        let owned = pairs(&a);
        let signed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(sig(&a), csb_signature("sk", &signed));
    }
}
