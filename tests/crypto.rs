//! SM2/SM3/SM4 checked against OpenSSL 3, an implementation nobody here wrote, and
//! the crypto helpers of the C ABI with their error codes.

mod common;

use common::*;
use mi_sdk::crypto::sm;
use mi_sdk::ffi::*;
use std::ffi::{c_char, CString};
use std::process::Command;

fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl runs (scripts/test.sh installs it)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn text_fn(f: impl FnOnce(*mut c_char, *mut i32) -> i32) -> (i32, String) {
    let mut buf = vec![0u8; 1 << 16];
    let mut len = buf.len() as i32;
    let rc = f(buf.as_mut_ptr().cast(), &mut len);
    let s = if rc == MI_OK { String::from_utf8_lossy(&buf[..len as usize]).into_owned() } else { String::new() };
    (rc, s)
}

fn sm3_hex(data: &[u8]) -> (i32, String) {
    let d = CString::new(data).unwrap();
    // SAFETY: valid string and buffer.
    text_fn(|b, l| unsafe { mi_sm3_hex(d.as_ptr(), b, l) })
}

fn sm4(encrypt: bool, mode: &str, key: &str, iv: Option<&str>, text: &[u8]) -> (i32, String) {
    let (m, k, t) = (CString::new(mode).unwrap(), CString::new(key).unwrap(), CString::new(text).unwrap());
    let iv = iv.map(|v| CString::new(v).unwrap());
    let ivp = iv.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
    // SAFETY: valid strings (or NULL iv) and buffer.
    text_fn(|b, l| unsafe {
        if encrypt {
            mi_sm4_encrypt_hex(m.as_ptr(), k.as_ptr(), ivp, t.as_ptr(), b, l)
        } else {
            mi_sm4_decrypt_hex(m.as_ptr(), k.as_ptr(), ivp, t.as_ptr(), b, l)
        }
    })
}

fn samples() -> Vec<Vec<u8>> {
    vec![
        b"abc".to_vec(),
        b"".to_vec(),
        "医疗保障信息平台 两定机构接口 {\"psn_name\":\"张三\"}".as_bytes().to_vec(),
        (0..5000).map(|i| b"0123456789abcdef"[i % 16]).collect(),
    ]
}

#[test]
fn sm3_and_hmac_sm3_match_openssl() {
    let _g = serial();
    for s in samples() {
        let ours = sm3_hex(&s);
        assert_eq!(ours.0, MI_OK);
        let theirs = String::from_utf8(openssl(&["dgst", "-sm3", "-r"], &s)).unwrap();
        assert_eq!(ours.1, theirs.split_whitespace().next().unwrap(), "{}", String::from_utf8_lossy(&s));
        let mac = String::from_utf8(openssl(&["dgst", "-sm3", "-hmac", "mi-key", "-r"], &s)).unwrap();
        assert_eq!(hex::encode(sm::hmac_sm3(b"mi-key", &s)), mac.split_whitespace().next().unwrap());
    }
    assert_eq!(sm3_hex(b"abc").1, "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
}

#[test]
fn sm4_ecb_and_cbc_match_openssl_both_ways() {
    let _g = serial();
    let key = "0123456789ABCDEFFEDCBA9876543210";
    let iv = "000102030405060708090A0B0C0D0E0F";
    for s in samples().into_iter().filter(|s| !s.is_empty()) {
        for mode in ["ecb", "cbc"] {
            let iv_arg = (mode == "cbc").then_some(iv);
            let (rc, ours) = sm4(true, mode, key, iv_arg, &s);
            assert_eq!(rc, MI_OK);
            let mut args = vec!["enc".to_string(), format!("-sm4-{mode}"), "-K".into(), key.into()];
            if mode == "cbc" {
                args.extend(["-iv".to_string(), iv.to_string()]);
            }
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let theirs = openssl(&a, &s);
            assert_eq!(ours, hex::encode_upper(&theirs), "{mode}");
            // OpenSSL's ciphertext, lower-case, decrypts with ours.
            let (rc, back) = sm4(false, mode, key, iv_arg, hex::encode(&theirs).as_bytes());
            assert_eq!((rc, back.as_bytes()), (MI_OK, s.as_slice()));
            // Ours decrypts with OpenSSL.
            let mut d = a.clone();
            d.push("-d");
            assert_eq!(openssl(&d, &hex::decode(&ours).unwrap()), s);
        }
    }
}

#[test]
fn crypto_helpers_refuse_bad_arguments_with_codes() {
    let _g = serial();
    let key = "0123456789ABCDEFFEDCBA9876543210";
    assert_eq!(sm4(true, "ofb", key, None, b"x").0, MI_E_INVALID_ARGUMENT);
    assert!(last_error().contains("ecb"));
    assert_eq!(sm4(true, "ecb", "0123", None, b"x").0, MI_E_INVALID_ARGUMENT);
    assert_eq!(sm4(true, "ecb", "zz23456789ABCDEFFEDCBA9876543210", None, b"x").0, MI_E_INVALID_ARGUMENT);
    assert_eq!(sm4(true, "cbc", key, None, b"x").0, MI_E_INVALID_ARGUMENT);
    assert_eq!(sm4(false, "ecb", key, None, b"00112233").0, MI_E_INVALID_ARGUMENT);
    let (_, c) = sm4(true, "ecb", key, None, b"secret text");
    assert_eq!(sm4(false, "ecb", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", None, c.as_bytes()).0, MI_E_INVALID_ARGUMENT);
    // SAFETY: NULLs are allowed and refused.
    assert_eq!(
        unsafe { mi_sm3_hex(std::ptr::null(), std::ptr::null_mut(), std::ptr::null_mut()) },
        MI_E_INVALID_ARGUMENT
    );
    let d = CString::new("abc").unwrap();
    let mut len = 0;
    // SAFETY: NULL buffer with capacity 0 asks for the size.
    assert_eq!(unsafe { mi_sm3_hex(d.as_ptr(), std::ptr::null_mut(), &mut len) }, MI_E_BUFFER_TOO_SMALL);
    assert_eq!(len, 64);
    // Not UTF-8 before init: refused.
    assert_eq!(sm3_hex(b"\xd5\xc5").0, MI_E_INVALID_ARGUMENT);
}

#[test]
fn crypto_helpers_read_and_write_the_configured_charset() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(serde_json::json!({"charset": "gbk"})), MI_OK);
    // 张三 in GBK hashes as its UTF-8 text.
    let (rc, h) = sm3_hex(b"\xd5\xc5\xc8\xfd");
    assert_eq!(rc, MI_OK);
    assert_eq!(h, hex::encode(sm::sm3("张三".as_bytes())));
    let key = "0123456789ABCDEFFEDCBA9876543210";
    let (_, c) = sm4(true, "ecb", key, None, b"\xd5\xc5\xc8\xfd");
    assert_eq!(
        c,
        hex::encode_upper(sm::sm4_encrypt(sm::Mode::Ecb, &hex::decode(key).unwrap(), None, "张三".as_bytes()).unwrap())
    );
    let c_args = CString::new("ecb").unwrap();
    let (k, t) = (CString::new(key).unwrap(), CString::new(c.clone()).unwrap());
    let mut buf = vec![0u8; 64];
    let mut len = 64;
    // SAFETY: valid strings and buffer.
    let rc = unsafe {
        mi_sm4_decrypt_hex(c_args.as_ptr(), k.as_ptr(), std::ptr::null(), t.as_ptr(), buf.as_mut_ptr().cast(), &mut len)
    };
    assert_eq!((rc, &buf[..len as usize]), (MI_OK, &b"\xd5\xc5\xc8\xfd"[..]), "the plaintext comes back in GBK");
    mi_shutdown(1000);
}

/// DER SEQUENCE { INTEGER r, INTEGER s } <-> raw r||s, for the test only.
fn der_to_raw(der: &[u8]) -> Vec<u8> {
    let mut i = 2;
    if der[1] & 0x80 != 0 {
        i += (der[1] & 0x7f) as usize;
    }
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[i], 0x02);
        let n = der[i + 1] as usize;
        let v = &der[i + 2..i + 2 + n];
        let v = if v.len() == 33 { &v[1..] } else { v };
        out.extend(std::iter::repeat_n(0u8, 32 - v.len()));
        out.extend_from_slice(v);
        i += 2 + n;
    }
    out
}

fn raw_to_der(raw: &[u8]) -> Vec<u8> {
    let int = |v: &[u8]| {
        let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        if v.first().is_none_or(|b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut o = vec![0x02, v.len() as u8];
        o.extend(v);
        o
    };
    let body: Vec<u8> = [int(&raw[..32]), int(&raw[32..])].concat();
    let mut o = vec![0x30, body.len() as u8];
    o.extend(body);
    o
}

/// The hex bytes of a `priv:` or `pub:` block of `openssl pkey -text`.
fn text_block(text: &str, label: &str) -> Vec<u8> {
    let mut lines = text.lines().skip_while(|l| l.trim() != label).skip(1);
    let mut hexs = String::new();
    for l in lines.by_ref() {
        if !l.starts_with(' ') {
            break;
        }
        hexs.push_str(&l.trim().replace(':', ""));
    }
    hex::decode(hexs).unwrap()
}

#[test]
fn sm2_signatures_verify_across_openssl_and_mi_sdk() {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    openssl(&["genpkey", "-algorithm", "SM2", "-out", &p("k.pem")], b"");
    openssl(&["pkey", "-in", &p("k.pem"), "-pubout", "-out", &p("pub.pem")], b"");
    let text = String::from_utf8(openssl(&["pkey", "-in", &p("k.pem"), "-text", "-noout"], b"")).unwrap();
    let (private, public) = (text_block(&text, "priv:"), text_block(&text, "pub:"));
    let user_id = "A5C2B0D1E7F845B2A1C4D9E8F7A6B5C4";
    let sk = sm::signing_key(&b64(&private), user_id).unwrap();
    let vk = sm::verifying_key(&b64(&public), user_id).unwrap();
    assert_eq!(sm::public_key_b64(&sk), b64(&public));
    let msg = "appId=1GF3Q2VKF0TH4460C80A0000DCF00F8B&data={\"a\":1}&key=A5C2B0D1E7F845B2A1C4D9E8F7A6B5C4";
    std::fs::write(p("m.txt"), msg).unwrap();
    // mi_sdk signs; OpenSSL verifies with the same distinguishing id (and not another).
    let raw = base64::engine::general_purpose::STANDARD.decode(sm::sm2_sign(&sk, msg.as_bytes())).unwrap();
    std::fs::write(p("ours.der"), raw_to_der(&raw)).unwrap();
    let verify = |sig: &str, id: &str| {
        Command::new("openssl")
            .args([
                "pkeyutl",
                "-verify",
                "-in",
                &p("m.txt"),
                "-sigfile",
                sig,
                "-pubin",
                "-inkey",
                &p("pub.pem"),
                "-rawin",
                "-digest",
                "sm3",
                "-pkeyopt",
                &format!("distid:{id}"),
            ])
            .output()
            .unwrap()
    };
    let ok = verify(&p("ours.der"), user_id);
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Signature Verified Successfully"), "{ok:?}");
    assert!(!verify(&p("ours.der"), "1234567812345678").status.success());
    // OpenSSL signs; mi_sdk verifies.
    openssl(
        &[
            "pkeyutl",
            "-sign",
            "-in",
            &p("m.txt"),
            "-inkey",
            &p("k.pem"),
            "-rawin",
            "-digest",
            "sm3",
            "-pkeyopt",
            &format!("distid:{user_id}"),
            "-out",
            &p("theirs.der"),
        ],
        b"",
    );
    let theirs = der_to_raw(&std::fs::read(p("theirs.der")).unwrap());
    assert!(sm::sm2_verify(&vk, msg.as_bytes(), &b64(&theirs)));
    assert!(!sm::sm2_verify(&vk, b"another message", &b64(&theirs)));
}

/// GCM's GHASH multiplication in GF(2^128), bit for bit as NIST SP 800-38D writes
/// it: the test's own, so the sealing below is checked against OpenSSL's SM4 and
/// nothing the SDK shares.
fn gf_mul(x: u128, y: u128) -> u128 {
    let (mut z, mut v) = (0u128, y);
    for i in 0..128 {
        if (x >> (127 - i)) & 1 == 1 {
            z ^= v;
        }
        v = if v & 1 == 1 { (v >> 1) ^ (0xE1 << 120) } else { v >> 1 };
    }
    z
}

fn ghash(h: u128, aad: &[u8], ct: &[u8]) -> u128 {
    let mut y = 0u128;
    for part in [aad, ct] {
        for block in part.chunks(16) {
            let mut b = [0u8; 16];
            b[..block.len()].copy_from_slice(block);
            y = gf_mul(y ^ u128::from_be_bytes(b), h);
        }
    }
    let lengths = ((aad.len() as u128 * 8) << 64) | (ct.len() as u128 * 8);
    gf_mul(y ^ lengths, h)
}

/// The journal's sealing (SM4-GCM) is GCM over SM4 as OpenSSL computes SM4: its
/// ciphertext is OpenSSL's SM4-CTR from the nonce's second counter block, and its
/// tag GHASH under OpenSSL's SM4 of zeros, masked by OpenSSL's SM4 of the first.
#[test]
fn journal_sealing_is_sm4_gcm_as_openssl_computes_sm4() {
    use base64::Engine;
    let key = *b"mi-journal-key-1";
    let k = mi_sdk::crypto::seal::SealKey::from_bytes(key);
    let aad = b"mi_request.result:42";
    for plain in [&b""[..], b"x", "{\"psn_name\":\"\u{5f20}\u{4e09}\",\"certno\":\"440301199001011234\"}".as_bytes()] {
        let sealed = k.seal(aad, plain).unwrap();
        let raw =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sealed.strip_prefix("mi1.").unwrap()).unwrap();
        let (nonce, rest) = raw.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let block = |n: u32| [nonce, &n.to_be_bytes()].concat();
        let ecb = |b: &[u8]| openssl(&["enc", "-sm4-ecb", "-nopad", "-K", &hex::encode(key)], b);
        if !plain.is_empty() {
            let theirs = openssl(&["enc", "-sm4-ctr", "-K", &hex::encode(key), "-iv", &hex::encode(block(2))], plain);
            assert_eq!(ct, &theirs[..], "the ciphertext");
        }
        let h = u128::from_be_bytes(ecb(&[0u8; 16]).try_into().unwrap());
        let mask = u128::from_be_bytes(ecb(&block(1)).try_into().unwrap());
        assert_eq!(tag, &(ghash(h, aad, ct) ^ mask).to_be_bytes()[..], "the tag");
        assert_eq!(k.open(aad, &sealed).unwrap(), plain);
    }
}
