//! The typed set of parameters: their names (`networkFeeBasisPoints`,
//! `pricePerSecond.<market>`, …), ranges, defaults and meaning. Pure.

use std::ops::RangeInclusive;

/// 100 % in basis points.
pub const BASIS_POINTS: i64 = 10_000;
/// µGAI in one GAI.
pub const MICRO_GAI: i64 = 1_000_000;

/// One parameter of the network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Parameter {
    /// The treasury's share of every settled job, in basis points.
    NetworkFeeBasisPoints,
    /// µGAI per second a job of this market pays (`None`: a job placed
    /// without a market, and any market without its own price).
    PricePerSecond(Option<String>),
    /// µGAI per 1,000 prompt tokens through the gateway (issue 14).
    PricePer1kInputTokens(Option<String>),
    /// µGAI per 1,000 completion tokens through the gateway (issue 14).
    PricePer1kOutputTokens(Option<String>),
    /// How often nodes heartbeat, in seconds.
    HeartbeatIntervalSeconds,
    /// Missed heartbeat intervals before a node is offline.
    OfflineAfterIntervals,
    /// Tokens per second a node must show to qualify in this market
    /// (overrides the market qualification's own minimum).
    QualificationMinTokensPerSecond(String),
    /// Extra pay for a job's solar-powered seconds, in basis points of its price.
    GreenBonusBasisPoints,
    /// Share of the frozen voting power that must vote for a proposal to count.
    QuorumBasisPoints,
    /// Share of the yes and no votes that must be yes for a proposal to pass.
    ThresholdBasisPoints,
    /// How long a proposal is open for votes when it names no period.
    VotingPeriodSeconds,
}

/// Why a parameter name or value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParameterError {
    #[error("{name:?} is not a parameter (fix: use one of {})", Parameter::FORMS.join(", "))]
    Unknown { name: String },
    #[error("{name}: {value} is outside {min}..={max}")]
    OutOfRange {
        name: String,
        value: i64,
        min: i64,
        max: i64,
    },
}

/// Market names a parameter may carry: like the markets nodes report.
fn valid_market(market: &str) -> bool {
    !market.is_empty()
        && market.len() <= 64
        && market
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl Parameter {
    /// Every name form, for error messages and listings.
    pub const FORMS: &'static [&'static str] = &[
        "networkFeeBasisPoints",
        "pricePerSecond",
        "pricePerSecond.<market>",
        "pricePer1kInputTokens",
        "pricePer1kInputTokens.<market>",
        "pricePer1kOutputTokens",
        "pricePer1kOutputTokens.<market>",
        "heartbeatIntervalSeconds",
        "offlineAfterIntervals",
        "qualification.<market>.minTokensPerSecond",
        "greenBonusBasisPoints",
        "governance.quorumBasisPoints",
        "governance.thresholdBasisPoints",
        "governance.votingPeriodSeconds",
    ];

    /// The parameters that exist without a market.
    pub fn globals() -> [Parameter; 10] {
        [
            Parameter::NetworkFeeBasisPoints,
            Parameter::PricePerSecond(None),
            Parameter::PricePer1kInputTokens(None),
            Parameter::PricePer1kOutputTokens(None),
            Parameter::HeartbeatIntervalSeconds,
            Parameter::OfflineAfterIntervals,
            Parameter::GreenBonusBasisPoints,
            Parameter::QuorumBasisPoints,
            Parameter::ThresholdBasisPoints,
            Parameter::VotingPeriodSeconds,
        ]
    }

    pub fn parse(name: &str) -> Result<Self, ParameterError> {
        let unknown = || ParameterError::Unknown { name: name.into() };
        let parameter = match name {
            "networkFeeBasisPoints" => Parameter::NetworkFeeBasisPoints,
            "pricePerSecond" => Parameter::PricePerSecond(None),
            "pricePer1kInputTokens" => Parameter::PricePer1kInputTokens(None),
            "pricePer1kOutputTokens" => Parameter::PricePer1kOutputTokens(None),
            "heartbeatIntervalSeconds" => Parameter::HeartbeatIntervalSeconds,
            "offlineAfterIntervals" => Parameter::OfflineAfterIntervals,
            "greenBonusBasisPoints" => Parameter::GreenBonusBasisPoints,
            "governance.quorumBasisPoints" => Parameter::QuorumBasisPoints,
            "governance.thresholdBasisPoints" => Parameter::ThresholdBasisPoints,
            "governance.votingPeriodSeconds" => Parameter::VotingPeriodSeconds,
            _ => {
                if let Some(market) = name.strip_prefix("pricePerSecond.") {
                    Parameter::PricePerSecond(Some(market.to_string()))
                } else if let Some(market) = name.strip_prefix("pricePer1kInputTokens.") {
                    Parameter::PricePer1kInputTokens(Some(market.to_string()))
                } else if let Some(market) = name.strip_prefix("pricePer1kOutputTokens.") {
                    Parameter::PricePer1kOutputTokens(Some(market.to_string()))
                } else if let Some(market) = name
                    .strip_prefix("qualification.")
                    .and_then(|rest| rest.strip_suffix(".minTokensPerSecond"))
                {
                    Parameter::QualificationMinTokensPerSecond(market.to_string())
                } else {
                    return Err(unknown());
                }
            }
        };
        match &parameter {
            Parameter::PricePerSecond(Some(market))
            | Parameter::PricePer1kInputTokens(Some(market))
            | Parameter::PricePer1kOutputTokens(Some(market))
            | Parameter::QualificationMinTokensPerSecond(market)
                if !valid_market(market) =>
            {
                Err(unknown())
            }
            _ => Ok(parameter),
        }
    }

    /// The name as stored and shown.
    pub fn name(&self) -> String {
        match self {
            Parameter::NetworkFeeBasisPoints => "networkFeeBasisPoints".into(),
            Parameter::PricePerSecond(None) => "pricePerSecond".into(),
            Parameter::PricePerSecond(Some(market)) => format!("pricePerSecond.{market}"),
            Parameter::PricePer1kInputTokens(None) => "pricePer1kInputTokens".into(),
            Parameter::PricePer1kInputTokens(Some(market)) => {
                format!("pricePer1kInputTokens.{market}")
            }
            Parameter::PricePer1kOutputTokens(None) => "pricePer1kOutputTokens".into(),
            Parameter::PricePer1kOutputTokens(Some(market)) => {
                format!("pricePer1kOutputTokens.{market}")
            }
            Parameter::HeartbeatIntervalSeconds => "heartbeatIntervalSeconds".into(),
            Parameter::OfflineAfterIntervals => "offlineAfterIntervals".into(),
            Parameter::QualificationMinTokensPerSecond(market) => {
                format!("qualification.{market}.minTokensPerSecond")
            }
            Parameter::GreenBonusBasisPoints => "greenBonusBasisPoints".into(),
            Parameter::QuorumBasisPoints => "governance.quorumBasisPoints".into(),
            Parameter::ThresholdBasisPoints => "governance.thresholdBasisPoints".into(),
            Parameter::VotingPeriodSeconds => "governance.votingPeriodSeconds".into(),
        }
    }

    /// The values it may take.
    pub fn range(&self) -> RangeInclusive<i64> {
        match self {
            Parameter::NetworkFeeBasisPoints => 0..=5_000,
            Parameter::PricePerSecond(_)
            | Parameter::PricePer1kInputTokens(_)
            | Parameter::PricePer1kOutputTokens(_) => 0..=1_000 * MICRO_GAI,
            Parameter::HeartbeatIntervalSeconds => 1..=3_600,
            Parameter::OfflineAfterIntervals => 1..=100,
            Parameter::QualificationMinTokensPerSecond(_) => 1..=100_000,
            Parameter::GreenBonusBasisPoints => 0..=BASIS_POINTS,
            Parameter::QuorumBasisPoints => 1..=BASIS_POINTS,
            Parameter::ThresholdBasisPoints => 5_000..=BASIS_POINTS,
            Parameter::VotingPeriodSeconds => 1..=90 * 86_400,
        }
    }

    /// What it means, for listings.
    pub fn meaning(&self) -> &'static str {
        match self {
            Parameter::NetworkFeeBasisPoints => {
                "the treasury's share of every settled job, in basis points (100 = 1 %)"
            }
            Parameter::PricePerSecond(None) => {
                "µGAI per second for a job placed without a market, and in markets without a price"
            }
            Parameter::PricePerSecond(Some(_)) => "µGAI per second for a job of this market",
            Parameter::PricePer1kInputTokens(None) => {
                "µGAI per 1,000 prompt tokens through the OpenAI gateway, in markets without their own"
            }
            Parameter::PricePer1kInputTokens(Some(_)) => {
                "µGAI per 1,000 prompt tokens through the OpenAI gateway on this market's nodes"
            }
            Parameter::PricePer1kOutputTokens(None) => {
                "µGAI per 1,000 completion tokens through the OpenAI gateway, in markets without their own"
            }
            Parameter::PricePer1kOutputTokens(Some(_)) => {
                "µGAI per 1,000 completion tokens through the OpenAI gateway on this market's nodes"
            }
            Parameter::HeartbeatIntervalSeconds => "how often nodes heartbeat",
            Parameter::OfflineAfterIntervals => {
                "missed heartbeat intervals before a node is marked offline"
            }
            Parameter::QualificationMinTokensPerSecond(_) => {
                "tokens per second a node must show to qualify in this market"
            }
            Parameter::GreenBonusBasisPoints => {
                "extra pay for a job's solar-powered seconds, in basis points of its price"
            }
            Parameter::QuorumBasisPoints => {
                "share of the frozen voting power that must vote for a proposal to count"
            }
            Parameter::ThresholdBasisPoints => {
                "share of the yes and no votes that must be yes for a proposal to pass"
            }
            Parameter::VotingPeriodSeconds => "how long a proposal is open when it names no period",
        }
    }

    /// `value` if it is in range.
    pub fn check(&self, value: i64) -> Result<i64, ParameterError> {
        let range = self.range();
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ParameterError::OutOfRange {
                name: self.name(),
                value,
                min: *range.start(),
                max: *range.end(),
            })
        }
    }
}

impl std::fmt::Display for Parameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        for parameter in Parameter::globals().into_iter().chain([
            Parameter::PricePerSecond(Some("gpu-24g".into())),
            Parameter::QualificationMinTokensPerSecond("cpu".into()),
        ]) {
            assert_eq!(Parameter::parse(&parameter.name()), Ok(parameter));
        }
        for bad in [
            "fee",
            "pricePerSecond.",
            "pricePerSecond.a b",
            "qualification..minTokensPerSecond",
            "",
        ] {
            assert!(
                matches!(Parameter::parse(bad), Err(ParameterError::Unknown { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn values_outside_the_range_are_refused_with_it() {
        let fee = Parameter::NetworkFeeBasisPoints;
        assert_eq!(fee.check(250), Ok(250));
        let err = fee.check(9_000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "networkFeeBasisPoints: 9000 is outside 0..=5000"
        );
        assert!(Parameter::ThresholdBasisPoints.check(4_999).is_err());
    }
}
