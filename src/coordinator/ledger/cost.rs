//! A job's bill, pure: the hold at submission (price × timeout, in whole
//! seconds) and the split at settlement (price × billed seconds, capped by
//! the hold; the fee's share of it to the treasury, the rest to the node,
//! what was not charged back to the client), and the green bonus on top
//! of it (a share of the charge for the solar part of the run).

/// Basis points in 100 %.
const BASIS_POINTS: i64 = 10_000;

/// Whole seconds in `ms`, rounded up.
fn seconds_up(ms: i64) -> i64 {
    ms.max(0).saturating_add(999) / 1000
}

/// The hold for a job of `timeout_ms` at `price_per_second`; `None` when it
/// overflows (no account could hold it).
pub fn hold(price_per_second: i64, timeout_ms: i64) -> Option<i64> {
    price_per_second.checked_mul(seconds_up(timeout_ms))
}

/// How a settled hold splits; the four parts add up to the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Seconds charged: the run's, rounded up, at most what the hold pays for.
    pub billed_seconds: i64,
    /// To the node.
    pub paid: i64,
    /// To the treasury.
    pub fee: i64,
    /// Back to the client.
    pub refunded: i64,
}

/// Splits `held` for a run of `billed_ms` at `price_per_second` with a fee
/// of `fee_basis_points`.
pub fn split(held: i64, price_per_second: i64, billed_ms: i64, fee_basis_points: i64) -> Split {
    let held = held.max(0);
    let mut billed_seconds = seconds_up(billed_ms);
    if price_per_second > 0 {
        billed_seconds = billed_seconds.min(held / price_per_second);
    }
    let charged = price_per_second
        .saturating_mul(billed_seconds)
        .clamp(0, held);
    let fee_basis_points = fee_basis_points.clamp(0, BASIS_POINTS);
    // charged ≤ held ≤ i64::MAX and fee_basis_points ≤ 10,000: i128 never overflows.
    let fee = i64::try_from(
        i128::from(charged) * i128::from(fee_basis_points) / i128::from(BASIS_POINTS),
    )
    .unwrap_or(charged);
    Split {
        billed_seconds,
        paid: charged - fee,
        fee,
        refunded: held - charged,
    }
}

/// The green bonus of a job charged `charged` µGAI whose energy was
/// `solar_fraction` solar: `bonus_basis_points` of the charge for the solar
/// share of its billed seconds, rounded down; 0 for a fraction outside
/// (0, 1] or not a number.
pub fn green_bonus(charged: i64, solar_fraction: f64, bonus_basis_points: i64) -> i64 {
    if solar_fraction.is_nan() || solar_fraction <= 0.0 {
        return 0;
    }
    // Parts per million: exact integer arithmetic from here on.
    let solar_ppm = (solar_fraction.min(1.0) * 1_000_000.0).round() as i128;
    let bonus_basis_points = i128::from(bonus_basis_points.clamp(0, BASIS_POINTS));
    let bonus = i128::from(charged.max(0)) * bonus_basis_points * solar_ppm
        / (i128::from(BASIS_POINTS) * 1_000_000);
    i64::try_from(bonus).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_green_bonus_pays_its_share_for_the_solar_part() {
        // 400 µGAI charged, half solar, 20 %: 40.
        assert_eq!(green_bonus(400, 0.5, 2_000), 40);
        assert_eq!(green_bonus(400, 1.0, 10_000), 400);
        assert_eq!(green_bonus(400, 2.0, 10_000), 400, "a fraction over 1 is 1");
        assert_eq!(green_bonus(7, 0.333, 10_000), 2, "rounded down");
        for none in [0.0, -1.0, f64::NAN] {
            assert_eq!(green_bonus(400, none, 2_000), 0);
        }
        assert_eq!(green_bonus(400, 0.5, 0), 0);
        assert_eq!(green_bonus(i64::MAX, 1.0, 10_000), i64::MAX);
    }

    #[test]
    fn the_hold_is_price_times_whole_timeout_seconds() {
        assert_eq!(hold(100, 60_000), Some(6_000));
        assert_eq!(hold(100, 60_001), Some(6_100));
        assert_eq!(hold(0, 60_000), Some(0));
        assert_eq!(hold(i64::MAX, 2_000), None);
    }

    #[test]
    fn a_settlement_pays_billed_seconds_and_refunds_the_rest() {
        // 3.2 s at 100/s bills 4 s = 400; 5 % fee = 20; hold 6000.
        let split = split(6_000, 100, 3_200, 500);
        assert_eq!(
            split,
            Split {
                billed_seconds: 4,
                paid: 380,
                fee: 20,
                refunded: 5_600
            }
        );
        assert_eq!(split.paid + split.fee + split.refunded, 6_000);
    }

    #[test]
    fn a_run_past_the_hold_is_charged_the_hold_only() {
        let split = split(6_000, 100, 90_000, 1_000);
        assert_eq!(split.billed_seconds, 60);
        assert_eq!(split.paid + split.fee, 6_000);
        assert_eq!(split.refunded, 0);
    }

    #[test]
    fn parts_always_add_up() {
        for (held, price, ms, fee) in [
            (0, 0, 5_000, 500),
            (7, 3, 1, 10_000),
            (1_000_003, 7, 123_456, 333),
            (10, 100, 0, 500),
        ] {
            let s = split(held, price, ms, fee);
            assert_eq!(
                s.paid + s.fee + s.refunded,
                held,
                "{held} {price} {ms} {fee}"
            );
            assert!(s.paid >= 0 && s.fee >= 0 && s.refunded >= 0);
        }
    }
}
