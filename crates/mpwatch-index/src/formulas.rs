//! The rankers' formulas, exactly as `shared/docs/indices.md` states them, in full
//! double precision with real division (one public implementation used integer
//! division and is wrong). `ln` is the natural logarithm.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The quantities of one account over one period (see indices.md, "Symbols").
/// Counts shown as 10万+ enter as 100001.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct Inputs {
    /// Sum of reads.
    pub R: f64,
    /// Articles published in the period.
    pub n: f64,
    /// Days in the period (1 day, 7 week, 30 month, 365 year, else the real count).
    pub d: f64,
    /// Sum of reads of headline articles.
    pub Rt: f64,
    /// Largest reads of one article.
    pub Rmax: f64,
    /// Sum of 在看.
    pub Z: f64,
    /// Headline sum of 在看.
    pub Zt: f64,
    /// Largest 在看.
    pub Zmax: f64,
    /// Sum of 点赞.
    pub L: f64,
    /// Headline sum of 点赞.
    pub Lt: f64,
    /// Largest 点赞.
    pub Lmax: f64,
    /// Sum of shares.
    pub RE: f64,
    /// Headline sum of shares.
    pub REt: f64,
    /// Largest shares.
    pub REmax: f64,
}

/// Inputs of Newrank's NRI (its own names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct NriInputs {
    /// Days of the period, counted inclusively.
    pub days: f64,
    /// Sum of reads.
    pub readSum: f64,
    /// Largest reads.
    pub readMax: f64,
    /// `round(readSum / articles)`.
    pub readAvg: f64,
    /// Sum of headline reads.
    pub headline: f64,
    /// Sum of 点赞.
    pub likeSum: f64,
}

impl NriInputs {
    /// The NRI inputs implied by the WCI symbols.
    pub fn from_inputs(inputs: &Inputs) -> NriInputs {
        NriInputs {
            days: inputs.d,
            readSum: inputs.R,
            readMax: inputs.Rmax,
            readAvg: if inputs.n > 0.0 { (inputs.R / inputs.n).round() } else { 0.0 },
            headline: inputs.Rt,
            likeSum: inputs.L,
        }
    }
}

/// The formulas mpwatch computes; the name is stored with every value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Formula {
    /// Qingbo WCI V11 (2015-16).
    #[serde(rename = "wci-v11")]
    WciV11,
    /// Qingbo WCI V13 (rankings from 2017-07-01).
    #[serde(rename = "wci-v13")]
    WciV13,
    /// Qingbo WCI V14.2 as gsdata's usage page states it (with shares, × 1.2).
    #[serde(rename = "wci-v14.2")]
    WciV142,
    /// WCI V14.2 as the 2021 write-up states it (no shares term, 0.85 reads weight).
    #[serde(rename = "wci-v14.2-noshare")]
    WciV142NoShare,
    /// Newrank NRI.
    #[serde(rename = "nri")]
    Nri,
}

impl Formula {
    /// Every formula.
    pub const ALL: [Formula; 5] =
        [Formula::WciV11, Formula::WciV13, Formula::WciV142, Formula::WciV142NoShare, Formula::Nri];

    /// The name used on the command line and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Formula::WciV11 => "wci-v11",
            Formula::WciV13 => "wci-v13",
            Formula::WciV142 => "wci-v14.2",
            Formula::WciV142NoShare => "wci-v14.2-noshare",
            Formula::Nri => "nri",
        }
    }

    /// The input keys the formula reads (for `mpwatch index calc`).
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Formula::WciV11 | Formula::WciV13 => &["R", "n", "d", "Rt", "Rmax", "Z", "Zt", "Zmax"],
            Formula::WciV142 => {
                &["R", "n", "d", "Rt", "Rmax", "Z", "Zt", "Zmax", "L", "Lt", "Lmax", "RE", "REt", "REmax"]
            }
            Formula::WciV142NoShare => &["R", "n", "d", "Rt", "Rmax", "Z", "Zt", "Zmax", "L", "Lt", "Lmax"],
            Formula::Nri => &["days", "readSum", "readMax", "readAvg", "headline", "likeSum"],
        }
    }

    /// Computes the index from the WCI symbols (NRI derives its inputs from them).
    pub fn compute(self, inputs: &Inputs) -> f64 {
        match self {
            Formula::WciV11 => wci_v11(inputs),
            Formula::WciV13 => wci_v13(inputs),
            Formula::WciV142 => wci_v142(inputs),
            Formula::WciV142NoShare => wci_v142_noshare(inputs),
            Formula::Nri => nri(&NriInputs::from_inputs(inputs)),
        }
    }
}

impl fmt::Display for Formula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Formula {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Formula::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
            format!("unknown formula `{s}`; expected one of {}", Formula::ALL.map(Formula::as_str).join(", "))
        })
    }
}

/// `a / b`, 0 when there is nothing to divide by (no articles: no contribution).
fn per(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn ln1(x: f64) -> f64 {
    (x.max(0.0) + 1.0).ln()
}

/// WCI V11.
pub fn wci_v11(i: &Inputs) -> f64 {
    let reads = 0.40 * ln1(per(i.R, i.d)) + 0.45 * ln1(per(i.R, i.n)) + 0.15 * ln1(i.Rmax);
    let wows = 0.40 * ln1(per(10.0 * i.Z, i.d)) + 0.45 * ln1(per(10.0 * i.Z, i.n)) + 0.15 * ln1(10.0 * i.Zmax);
    (0.8 * reads + 0.2 * wows).powi(2) * 10.0
}

/// WCI V13.
pub fn wci_v13(i: &Inputs) -> f64 {
    let o = 0.85 * ln1(per(i.R, i.d)) + 0.15 * ln1(per(10.0 * i.Z, i.d));
    let a = 0.85 * ln1(per(i.R, i.n)) + 0.15 * ln1(per(10.0 * i.Z, i.n));
    let h = 0.85 * ln1(per(i.Rt, i.d)) + 0.15 * ln1(per(10.0 * i.Zt, i.d));
    let p = 0.85 * ln1(i.Rmax) + 0.15 * ln1(10.0 * i.Zmax);
    (0.30 * o + 0.30 * a + 0.30 * h + 0.10 * p).powi(2) * 10.0
}

fn v142_sum(i: &Inputs, f: impl Fn(f64, f64, f64, f64) -> f64) -> f64 {
    0.6 * f(per(i.R, i.d), per(i.Z, i.d), per(i.L, i.d), per(i.RE, i.d))
        + 0.2 * f(per(i.R, i.n), per(i.Z, i.n), per(i.L, i.n), per(i.RE, i.n))
        + 0.1 * f(per(i.Rt, i.d), per(i.Zt, i.d), per(i.Lt, i.d), per(i.REt, i.d))
        + 0.1 * f(i.Rmax, i.Zmax, i.Lmax, i.REmax)
}

/// WCI V14.2 as gsdata's usage page states it.
pub fn wci_v142(i: &Inputs) -> f64 {
    let f = |r: f64, z: f64, l: f64, e: f64| {
        0.70 * ln1(r) + 0.09 * ln1(10.0 * z) + 0.06 * ln1(10.0 * l) + 0.15 * ln1(10.0 * e)
    };
    v142_sum(i, f).powi(2) * 1.2 * 10.0
}

/// WCI V14.2 without the shares term (2021 write-up), × 10.
pub fn wci_v142_noshare(i: &Inputs) -> f64 {
    let f = |r: f64, z: f64, l: f64, _e: f64| 0.85 * ln1(r) + 0.09 * ln1(10.0 * z) + 0.06 * ln1(10.0 * l);
    v142_sum(i, f).powi(2) * 10.0
}

fn norm(x: f64, max: f64) -> f64 {
    let denominator = ln1(max);
    if denominator > 0.0 { ln1(x) / denominator * 1000.0 } else { 0.0 }
}

/// Newrank's NRI.
pub fn nri(i: &NriInputs) -> f64 {
    0.75 * norm(i.readSum, i.days * 800_000.0)
        + 0.05 * norm(i.readMax, 100_000.0)
        + 0.10 * norm(i.readAvg, 100_000.0)
        + 0.05 * norm(i.headline, i.days * 100_000.0)
        + 0.05 * norm(i.likeSum, i.days * 80_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cross-check week of indices.md.
    pub fn cross_check() -> Inputs {
        Inputs {
            R: 70_000.0,
            n: 14.0,
            d: 7.0,
            Rt: 50_000.0,
            Rmax: 12_000.0,
            Z: 700.0,
            Zt: 500.0,
            Zmax: 150.0,
            L: 1_400.0,
            Lt: 1_000.0,
            Lmax: 300.0,
            RE: 2_100.0,
            REt: 1_500.0,
            REmax: 400.0,
        }
    }

    #[test]
    fn cross_check_values_of_indices_md() {
        let inputs = cross_check();
        for (formula, expected) in [
            (Formula::WciV11, 717.8060314),
            (Formula::WciV13, 735.8162433),
            (Formula::WciV142NoShare, 766.6916074),
            (Formula::WciV142, 882.8037785),
            (Formula::Nri, 720.8275151),
        ] {
            let value = formula.compute(&inputs);
            assert!((value - expected).abs() < 1e-6, "{formula}: {value} vs {expected}");
        }
        let explicit = NriInputs {
            days: 7.0,
            readSum: 70_000.0,
            readMax: 12_000.0,
            readAvg: 5_000.0,
            headline: 50_000.0,
            likeSum: 1_400.0,
        };
        assert!((nri(&explicit) - 720.8275151).abs() < 1e-6);
    }

    #[test]
    fn no_articles_gives_zero_not_nan() {
        for formula in Formula::ALL {
            let value = formula.compute(&Inputs { d: 7.0, ..Inputs::default() });
            assert!(value.is_finite() && value >= 0.0, "{formula}: {value}");
        }
    }

    #[test]
    fn names_round_trip() {
        for formula in Formula::ALL {
            assert_eq!(formula.as_str().parse::<Formula>().unwrap(), formula);
        }
        assert!("wci-v12".parse::<Formula>().is_err());
    }
}
