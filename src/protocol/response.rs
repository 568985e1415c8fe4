//! Reading the platform's response envelope (docs/protocol.md, "Response envelope").

use serde_json::Value;

/// The two fields every outcome is decided on.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub infcode: i64,
    pub err_msg: String,
}

/// Parses a response body. `infcode` may be a number or a string on the wire; anything
/// that is not a JSON object with an `infcode` is not a platform response.
pub fn parse(body: &str) -> Result<(Value, Verdict), String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("response is not JSON: {e}"))?;
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
    fn non_responses_are_errors() {
        for b in ["<html>502</html>", "[]", "{}", r#"{"infcode":true}"#, r#"{"infcode":"ok"}"#] {
            assert!(parse(b).is_err(), "{b}");
        }
    }
}
