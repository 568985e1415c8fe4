//! Reading the platform's response envelope (docs/protocol.md, "Response envelope").

use serde_json::Value;

/// The two fields every outcome is decided on.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub infcode: i64,
    pub err_msg: String,
}

/// What a gateway's answer holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The platform's answer; `unwrapped` when a gateway wrapper carried it (then
    /// the HIS is given this text, the platform's own envelope).
    Platform { value: Value, verdict: Verdict, unwrapped: Option<String> },
    /// A gateway wrapper with `code` other than 0: the gateway refused the request
    /// (signature, timestamp, paas id) and nothing reached the platform.
    GatewayRefused { code: String, message: String },
}

/// Reads a gateway's answer: the platform's response envelope, or a tif gateway's
/// wrapper `{"code","type","message","data"}` (no `infcode`; docs/protocol.md,
/// "Gateway wrapper"). With `code` 0 the platform's answer is `data`, an object or
/// a JSON string of one; otherwise the gateway refused it.
pub fn read(body: &str) -> Result<Answer, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("response is not JSON: {e}"))?;
    let obj = v.as_object().ok_or("response is not a JSON object")?;
    if obj.contains_key("infcode") || !obj.contains_key("code") {
        let (value, verdict) = platform(v)?;
        return Ok(Answer::Platform { value, verdict, unwrapped: None });
    }
    let code = match &obj["code"] {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    if code != "0" {
        let message = match obj.get("message") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        return Ok(Answer::GatewayRefused { code, message });
    }
    let data = match obj.get("data") {
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|e| format!("the gateway wrapper's data is not JSON: {e}"))?
        }
        Some(d @ Value::Object(_)) => d.clone(),
        _ => return Err("the gateway wrapper (code 0) holds no platform answer in data".into()),
    };
    let text = data.to_string();
    let (value, verdict) = platform(data).map_err(|e| format!("inside the gateway wrapper: {e}"))?;
    Ok(Answer::Platform { value, verdict, unwrapped: Some(text) })
}

/// Parses a response body. `infcode` may be a number or a string on the wire; anything
/// that is not a JSON object with an `infcode` is not a platform response. A gateway
/// wrapper is read as [`read`] does; its refusal is an error here.
pub fn parse(body: &str) -> Result<(Value, Verdict), String> {
    match read(body)? {
        Answer::Platform { value, verdict, .. } => Ok((value, verdict)),
        Answer::GatewayRefused { code, message } => Err(format!("the gateway refused it (code {code}): {message}")),
    }
}

/// The verdict of a platform response envelope.
fn platform(v: Value) -> Result<(Value, Verdict), String> {
    let obj = v.as_object().ok_or("response is not a JSON object")?;
    let infcode = match obj.get("infcode") {
        Some(Value::Number(n)) => n.as_i64().ok_or("infcode is not an integer")?,
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| format!("infcode \"{s}\" is not a number"))?,
        Some(_) => return Err("infcode is neither a number nor a string".into()),
        None => return Err("response has no infcode".into()),
    };
    let err_msg = match obj.get("err_msg") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Ok((v, Verdict { infcode, err_msg }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infcode_as_number_or_string() {
        assert_eq!(parse(r#"{"infcode":0,"output":{}}"#).unwrap().1.infcode, 0);
        assert_eq!(parse(r#"{"infcode":"-1","err_msg":"x"}"#).unwrap().1, Verdict { infcode: -1, err_msg: "x".into() });
        assert_eq!(parse(r#"{"infcode":" 0 ","err_msg":null}"#).unwrap().1.infcode, 0);
    }

    #[test]
    fn a_gateway_wrapper_is_opened_or_read_as_a_refusal() {
        let inner = r#"{"infcode":0,"err_msg":null,"output":{"a":1}}"#;
        let as_object = format!(r#"{{"code":0,"type":"success","message":"成功","data":{inner}}}"#);
        let as_string = serde_json::json!({"code": "0", "type": "success", "message": "", "data": inner}).to_string();
        for body in [as_object, as_string] {
            match read(&body).unwrap() {
                Answer::Platform { value, verdict, unwrapped } => {
                    assert_eq!((verdict.infcode, &value["output"]["a"]), (0, &serde_json::json!(1)));
                    assert_eq!(serde_json::from_str::<Value>(&unwrapped.unwrap()).unwrap(), value);
                }
                other => panic!("{other:?}"),
            }
        }
        let refused = r#"{"code":401,"type":"error","message":"签名校验失败","data":null}"#;
        assert_eq!(
            read(refused).unwrap(),
            Answer::GatewayRefused { code: "401".into(), message: "签名校验失败".into() }
        );
        assert!(parse(refused).is_err());
        // A platform answer that happens to carry a `code` is still the platform's.
        assert!(matches!(read(r#"{"infcode":0,"code":5}"#).unwrap(), Answer::Platform { unwrapped: None, .. }));
        for bad in [r#"{"code":0,"data":null}"#, r#"{"code":0,"data":"not json"}"#, r#"{"code":0,"data":{"x":1}}"#] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn non_responses_are_errors() {
        for b in ["<html>502</html>", "[]", "{}", r#"{"infcode":true}"#, r#"{"infcode":"ok"}"#] {
            assert!(parse(b).is_err(), "{b}");
        }
    }
}
