//! Domain enums and their `repairmatch.v1` counterparts, each pair declared
//! once as a table from which both directions are generated.

use chrono::Weekday;
use repairmatch_core::eligibility::ExclusionRule;
use repairmatch_core::model::{CenterKind, FaultCategory, ServiceMode};
use repairmatch_proto::v1 as pb;

/// A wire number the proto does not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0}")]
pub struct UnknownValue(pub i32);

/// A domain enum with a `repairmatch.v1` counterpart. (A local trait: both
/// sides are other crates' types, so `From` cannot be implemented here.)
pub trait ProtoEnum: Sized + Copy {
    /// The value's number on the wire.
    fn to_proto(self) -> i32;

    /// The domain value of a wire number: `Ok(None)` for the `_UNSPECIFIED`
    /// zero, `Err` for a number the proto does not define.
    fn from_proto(value: i32) -> Result<Option<Self>, UnknownValue>;

    /// The value of a wire number that must be set: `None` for unspecified
    /// or unknown.
    fn from_proto_required(value: i32) -> Option<Self> {
        Self::from_proto(value).ok().flatten()
    }
}

macro_rules! proto_enum {
    ($domain:ident => $proto:ty { $($variant:ident => $wire:ident),+ $(,)? }) => {
        impl ProtoEnum for $domain {
            fn to_proto(self) -> i32 {
                type Proto = $proto;
                match self {
                    $($domain::$variant => Proto::$wire as i32),+
                }
            }

            fn from_proto(value: i32) -> Result<Option<Self>, UnknownValue> {
                type Proto = $proto;
                match Proto::try_from(value).map_err(|_| UnknownValue(value))? {
                    Proto::Unspecified => Ok(None),
                    $(Proto::$wire => Ok(Some($domain::$variant))),+
                }
            }
        }
    };
}

proto_enum!(ServiceMode => pb::ServiceMode {
    WalkIn => WalkIn,
    Onsite => Onsite,
    MailIn => MailIn,
    Exchange => Exchange,
    Remote => Remote,
});

proto_enum!(FaultCategory => pb::FaultCategory {
    Screen => Screen,
    Keypad => Keypad,
    Printer => Printer,
    CardReader => CardReader,
    BatteryPower => BatteryPower,
    Connectivity => Connectivity,
    Software => Software,
    Tamper => Tamper,
    Other => Other,
});

proto_enum!(CenterKind => pb::RepairCenterKind {
    Authorized => Authorized,
    BankService => BankService,
    ThirdParty => ThirdParty,
});

proto_enum!(Weekday => pb::DayOfWeek {
    Mon => Monday,
    Tue => Tuesday,
    Wed => Wednesday,
    Thu => Thursday,
    Fri => Friday,
    Sat => Saturday,
    Sun => Sunday,
});

proto_enum!(ExclusionRule => pb::ExclusionRule {
    NotFound => NotFound,
    Inactive => Inactive,
    Brand => Brand,
    Model => Model,
    Fault => Fault,
    Coverage => Coverage,
    DistanceCap => DistanceCap,
    ServiceMode => ServiceMode,
    Rating => Rating,
    Price => Price,
    Closed => Closed,
    Policy => Policy,
    Terms => Terms,
});

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<E: ProtoEnum + PartialEq + std::fmt::Debug>(values: &[E]) {
        for &value in values {
            assert_eq!(E::from_proto(value.to_proto()), Ok(Some(value)));
        }
        assert_eq!(E::from_proto(0), Ok(None), "zero is unspecified");
        assert_eq!(E::from_proto(999), Err(UnknownValue(999)));
    }

    #[test]
    fn every_enum_round_trips_and_refuses_unknown_numbers() {
        round_trips(&ServiceMode::ALL_VALUES);
        round_trips(&FaultCategory::ALL_VALUES);
        round_trips(&[CenterKind::Authorized, CenterKind::BankService, CenterKind::ThirdParty]);
        round_trips(&[
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]);
    }

    #[test]
    fn days_are_numbered_as_iso_8601_does() {
        assert_eq!(Weekday::Mon.to_proto(), 1);
        assert_eq!(Weekday::Sun.to_proto(), 7);
    }
}
