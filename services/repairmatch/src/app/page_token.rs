//! The page tokens callers see: the core's keyset token (the last match's
//! sort key, bound to the query) with the catalog version the first page was
//! ranked at, so the following pages can be served from that same ranking
//! by any replica that has it cached.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use repairmatch_core::paging::PageTokenError;

use crate::error::ServiceError;

/// A token for the page after the one ranked at catalog `version` whose
/// keyset token is `keyset`.
pub fn wrap(version: u64, keyset: &str) -> String {
    let mut bytes = version.to_be_bytes().to_vec();
    bytes.extend_from_slice(keyset.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The catalog version and keyset token a caller's token carries.
pub fn unwrap(token: &str) -> Result<(u64, String), ServiceError> {
    let malformed = || ServiceError::invalid_text("page_token", PageTokenError::Malformed.text());
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| malformed())?;
    if bytes.len() <= 8 {
        return Err(malformed());
    }
    let version = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    let keyset = String::from_utf8(bytes[8..].to_vec()).map_err(|_| malformed())?;
    Ok((version, keyset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_the_version_and_the_keyset() {
        let token = wrap(42, "AVWCVxC_pHtDeq9x");
        assert_eq!(unwrap(&token).unwrap(), (42, "AVWCVxC_pHtDeq9x".to_owned()));
        assert!(unwrap("%%").is_err());
        assert!(unwrap(&URL_SAFE_NO_PAD.encode([0_u8; 8])).is_err(), "a version with no keyset");
    }
}
