//! The insured people the simulator knows. Realistic shapes, invented people.

/// One insured person with one insurance.
#[derive(Debug, Clone)]
pub struct Person {
    pub psn_no: &'static str,
    pub psn_name: &'static str,
    pub certno: &'static str,
    pub gend: &'static str,
    pub brdy: &'static str,
    pub naty: &'static str,
    pub insutype: &'static str,
    pub psn_type: &'static str,
    pub insuplc_admdvs: &'static str,
    pub emp_name: &'static str,
    /// Personal account balance in fen (1/100 yuan).
    pub balc_fen: i64,
    /// Share of in-scope fees the fund pays, in percent.
    pub fund_ratio: i64,
    /// The e-voucher token the platform knows this person by today (mdtrt_cert_type 01).
    pub ec_token: &'static str,
    /// The social-security card's number (mdtrt_cert_type 03).
    pub card_no: &'static str,
}

pub fn people() -> Vec<Person> {
    vec![
        Person {
            psn_no: "44030000000000100001",
            psn_name: "张三",
            certno: "440301199001011234",
            gend: "1",
            brdy: "1990-01-01",
            naty: "01",
            insutype: "310",
            psn_type: "11",
            insuplc_admdvs: "440300",
            emp_name: "深圳市示例科技有限公司",
            balc_fen: 120_050,
            fund_ratio: 70,
            ec_token: "440300EC0000000000000000001234",
            card_no: "A12345678",
        },
        Person {
            psn_no: "44010000000000200002",
            psn_name: "李四",
            certno: "440104198505052345",
            gend: "2",
            brdy: "1985-05-05",
            naty: "01",
            insutype: "390",
            psn_type: "1501",
            insuplc_admdvs: "440100",
            emp_name: "",
            balc_fen: 0,
            fund_ratio: 50,
            ec_token: "440100EC0000000000000000002345",
            card_no: "B23456789",
        },
        Person {
            psn_no: "44030000000000300003",
            psn_name: "欧阳娜娜",
            certno: "44030519500315002X",
            gend: "2",
            brdy: "1950-03-15",
            naty: "01",
            insutype: "310",
            psn_type: "12",
            insuplc_admdvs: "440300",
            emp_name: "深圳市示例退休人员管理中心",
            balc_fen: 5_000_000,
            fund_ratio: 85,
            ec_token: "440300EC000000000000000000002X",
            card_no: "C34567890",
        },
    ]
}

/// Age in whole years on a date `yyyy-MM-dd`.
pub fn age_on(brdy: &str, today: &str) -> i64 {
    let p = |s: &str, a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    let (by, bm, bd) = (p(brdy, 0, 4), p(brdy, 5, 7), p(brdy, 8, 10));
    let (ty, tm, td) = (p(today, 0, 4), p(today, 5, 7), p(today, 8, 10));
    ty - by - i64::from((tm, td) < (bm, bd))
}

#[cfg(test)]
mod tests {
    #[test]
    fn age() {
        assert_eq!(super::age_on("1990-01-01", "2026-11-27"), 36);
        assert_eq!(super::age_on("1990-12-01", "2026-11-27"), 35);
    }
}
