//! Opaque page tokens for the catalog listings: the last key returned, bound
//! to the listing's filters, so a token replayed with other filters is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::ServiceError;

fn scope_digest(scope: &str) -> [u8; 8] {
    let digest = Sha256::digest(scope.as_bytes());
    digest[..8].try_into().expect("8 bytes")
}

/// A token resuming after `last` for listings with this `scope`.
pub fn encode(scope: &str, last: &str) -> String {
    let mut bytes = scope_digest(scope).to_vec();
    bytes.extend_from_slice(last.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key to resume after, when the token belongs to this `scope`.
pub fn decode(token: &str, scope: &str) -> Result<String, ServiceError> {
    let refuse = |why: &str| ServiceError::invalid("page_token", why);
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| refuse("is malformed"))?;
    if bytes.len() < 8 {
        return Err(refuse("is malformed"));
    }
    if bytes[..8] != scope_digest(scope) {
        return Err(refuse("was issued for different filters"));
    }
    String::from_utf8(bytes[8..].to_vec()).map_err(|_| refuse("is malformed"))
}

/// The key to resume after, from a request's page token: `None` on the
/// first page (no token).
pub fn resume_after(token: &str, scope: &str) -> Result<Option<String>, ServiceError> {
    (!token.is_empty()).then(|| decode(token, scope)).transpose()
}

/// The token for the page after one whose last key is `last`: empty when
/// nothing follows.
pub fn next(scope: &str, more: bool, last: Option<&str>) -> String {
    match (more, last) {
        (true, Some(last)) => encode(scope, last),
        _ => String::new(),
    }
}

/// Page size per AIP-158: 0 = `default`, above `max` = `max`, negative refused.
pub fn page_size(requested: i32, default: usize, max: usize) -> Result<usize, ServiceError> {
    match requested {
        ..0 => Err(ServiceError::invalid("page_size", "must not be negative")),
        0 => Ok(default),
        n => Ok((n as usize).min(max)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_to_their_scope() {
        let token = encode("owner=a", "rc-9");
        assert_eq!(decode(&token, "owner=a").unwrap(), "rc-9");
        assert!(decode(&token, "owner=b").is_err());
        assert!(decode("%%", "owner=a").is_err());
        assert_eq!(page_size(0, 50, 1000).unwrap(), 50);
        assert_eq!(page_size(5000, 50, 1000).unwrap(), 1000);
        assert!(page_size(-1, 50, 1000).is_err());
        assert_eq!(resume_after("", "owner=a").unwrap(), None, "no token: the first page");
        assert_eq!(resume_after(&token, "owner=a").unwrap().as_deref(), Some("rc-9"));
        assert_eq!(next("owner=a", true, Some("rc-9")), token);
        assert_eq!(next("owner=a", false, Some("rc-9")), "", "the last page");
    }
}
