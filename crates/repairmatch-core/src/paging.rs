//! Opaque page tokens.
//!
//! A token is the last match's sort key plus the query's fingerprint, so the
//! next page starts strictly after it (keyset paging: no duplicates even when
//! the catalog changes between pages) and a token replayed with another query
//! is refused. Tokens are base64url; callers must treat them as opaque.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::i18n::Text;
use crate::ranking::SortKey;

const TOKEN_VERSION: u8 = 1;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageTokenError {
    /// Not a token this service wrote.
    #[error("is malformed")]
    Malformed,
    /// Written for a different query.
    #[error("was issued for a different query")]
    OtherQuery,
}

impl PageTokenError {
    /// What is wrong with the token, for people, in no language yet.
    pub fn text(&self) -> Text {
        Text::new(match self {
            PageTokenError::Malformed => "violation-page-token-malformed",
            PageTokenError::OtherQuery => "violation-page-token-other-query",
        })
    }
}

/// Encodes the position after which the next page starts.
pub fn encode(fingerprint: [u8; 16], key: &SortKey) -> String {
    let mut bytes = Vec::with_capacity(1 + 16 + 4 + 8 + 8 + key.center_id.len());
    bytes.push(TOKEN_VERSION);
    bytes.extend_from_slice(&fingerprint);
    bytes.extend_from_slice(&key.tier.to_be_bytes());
    bytes.extend_from_slice(&key.score.to_bits().to_be_bytes());
    bytes.extend_from_slice(&key.distance_km.to_bits().to_be_bytes());
    bytes.extend_from_slice(key.center_id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a token, checking it belongs to the query with `fingerprint`.
pub fn decode(token: &str, fingerprint: [u8; 16]) -> Result<SortKey, PageTokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| PageTokenError::Malformed)?;
    let fixed = 1 + 16 + 4 + 8 + 8;
    if bytes.len() <= fixed || bytes[0] != TOKEN_VERSION {
        return Err(PageTokenError::Malformed);
    }
    if bytes[1..17] != fingerprint {
        return Err(PageTokenError::OtherQuery);
    }
    let word = |start: usize| u64::from_be_bytes(bytes[start..start + 8].try_into().expect("length checked"));
    let tier = u32::from_be_bytes(bytes[17..21].try_into().expect("length checked"));
    let score = f64::from_bits(word(21));
    let distance_km = f64::from_bits(word(29));
    let center_id = String::from_utf8(bytes[fixed..].to_vec()).map_err(|_| PageTokenError::Malformed)?;
    if !score.is_finite() || !distance_km.is_finite() {
        return Err(PageTokenError::Malformed);
    }
    Ok(SortKey { tier, score, distance_km, center_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bind_to_the_query() {
        let key = SortKey { tier: 1, score: 0.734, distance_km: 3.25, center_id: "rc-0000042".into() };
        let token = encode([7; 16], &key);
        assert_eq!(decode(&token, [7; 16]), Ok(key));
        assert_eq!(decode(&token, [8; 16]), Err(PageTokenError::OtherQuery));
        assert_eq!(decode("not a token!", [7; 16]), Err(PageTokenError::Malformed));
        assert_eq!(decode(&token[..10], [7; 16]), Err(PageTokenError::Malformed));
    }
}
