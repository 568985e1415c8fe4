//! Answers whose `output` the platform sealed (docs/protocol.md, "Encrypted
//! channels"): opened where they come in, on the 两定 channel and the file channel
//! alike, before anyone judges them.

use crate::crypto::sealed_output::SealedOutput;
use crate::protocol::response::{self, Answer};
use crate::transport::{Exchange, Reply};
use serde_json::Value;

/// An HTTP answer from the platform, its output opened when the platform seals it;
/// an answer that cannot be trusted is [`Exchange::Unverified`].
pub fn opened(sealed: Option<&SealedOutput>, r: Reply) -> Exchange {
    let Some(sealed) = sealed else { return Exchange::Answer(r) };
    match open_answer(sealed, &r.body) {
        Ok(body) => Exchange::Answer(Reply { status: r.status, body }),
        Err(why) => Exchange::Unverified { status: r.status, body: r.body, why },
    }
}

/// The platform's envelope with its `output` opened. A gateway's wrapper is opened
/// first (the sealed output is inside it), and then the HIS is given the platform's
/// envelope, as it is for any wrapped answer. An answer with nothing sealed in it
/// (a gateway's refusal, a platform refusal, a body that is no platform answer)
/// passes as it came, to be judged as it is.
pub fn open_answer(sealed: &SealedOutput, body: &str) -> std::result::Result<String, String> {
    let Ok(Answer::Platform { value: Value::Object(mut env), .. }) = response::read(body) else {
        return Ok(body.to_string());
    };
    Ok(if sealed.open(&mut env)? { Value::Object(env).to_string() } else { body.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sealed_output::Seal;
    use crate::crypto::sm::{self, Mode};
    use serde_json::json;

    #[test]
    fn the_wrapper_is_opened_before_the_output_and_unsealed_answers_pass_as_they_came() {
        let key = *b"0123456789ABCDEF";
        let sealed = SealedOutput { key, seal: Seal::Hex };
        let hex = sm::to_hex_upper(&sm::sm4_encrypt(Mode::Ecb, &key, None, br#"{"a":1}"#).unwrap());
        let inner = json!({"infcode": 0, "output": hex});
        for data in [inner.clone(), Value::String(inner.to_string())] {
            let wrapped = json!({"code": 0, "type": "success", "message": "", "data": data}).to_string();
            let opened: Value = serde_json::from_str(&open_answer(&sealed, &wrapped).unwrap()).unwrap();
            assert_eq!(opened, json!({"infcode": 0, "output": {"a": 1}}), "the platform's envelope, opened");
        }
        for as_came in [
            r#"{"code":401,"type":"error","message":"签名校验失败","data":null}"#,
            r#"{"infcode": -1, "err_msg": "x", "output": null}"#,
            r#"{"infcode":0,"output":{"b":  2.50}}"#,
            "<html>502</html>",
        ] {
            assert_eq!(open_answer(&sealed, as_came).unwrap(), as_came);
        }
        let garbled = json!({"code": 0, "data": {"infcode": 0, "output": "0123456789ABCDEF"}}).to_string();
        assert!(open_answer(&sealed, &garbled).unwrap_err().contains("cannot be decrypted"));
    }
}
