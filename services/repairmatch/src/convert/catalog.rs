//! Catalog write results and listing filters.

use repairmatch_core::model::CenterKind;
use repairmatch_proto::v1 as pb;
use tonic_types::FieldViolation;

use super::enums::ProtoEnum;
use crate::app::{ItemOutcome, ItemResult};
use crate::error::ServiceError;

impl ItemOutcome {
    /// The outcome's number on the wire.
    pub fn to_proto(self) -> i32 {
        let outcome = match self {
            ItemOutcome::Ok => pb::ItemOutcome::Ok,
            ItemOutcome::InvalidArgument => pb::ItemOutcome::InvalidArgument,
            ItemOutcome::PermissionDenied => pb::ItemOutcome::PermissionDenied,
            ItemOutcome::Aborted => pb::ItemOutcome::Aborted,
        };
        outcome as i32
    }
}

/// A result's field violations as messages.
pub fn violations_to_proto(violations: &[FieldViolation]) -> Vec<pb::FieldViolation> {
    violations
        .iter()
        .map(|v| pb::FieldViolation { field: v.field.clone(), description: v.description.clone() })
        .collect()
}

/// One item's result as a message.
pub fn item_result_to_proto(result: &ItemResult) -> pb::ItemResult {
    pb::ItemResult {
        id: result.id.clone(),
        outcome: result.outcome.to_proto(),
        etag: result.etag.clone(),
        field_violations: violations_to_proto(&result.violations),
        message: result.message.clone(),
    }
}

/// The kind a listing filters on: none for unspecified.
pub fn kind_filter(value: i32) -> Result<Option<CenterKind>, ServiceError> {
    CenterKind::from_proto(value).map_err(|unknown| ServiceError::invalid("kind", unknown.to_string()))
}
