//! Tenants, API keys and who may do what.
//!
//! Keys travel as `authorization: Bearer <key>`; the config holds only their
//! SHA-256, compared in constant time. The role rules ("Who may do what" in
//! docs/catalog-api.md) are plain functions here, so each is unit-tested
//! without a network.

use std::sync::Arc;

use repairmatch_core::model::{CenterKind, RepairCenter, match_key};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic_types::FieldViolation;

use crate::config::Config;

/// What a tenant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Finds repair centers for merchants; cannot write.
    Bank,
    /// Writes its own centers; authorizes only its own brands.
    Manufacturer,
    /// An independent repair network: its own THIRD_PARTY centers only.
    Provider,
    /// Everything.
    Ops,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The tenant's name: the owner of what it writes.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Brands it owns (manufacturers), lower-cased.
    pub brand_keys: Vec<String>,
    /// Profiles it may ask for (banks); empty = any.
    pub profiles: Vec<String>,
    /// Its default profile, when set.
    pub default_profile: Option<String>,
}

impl Role {
    /// The role as the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Bank => "bank",
            Role::Manufacturer => "manufacturer",
            Role::Provider => "provider",
            Role::Ops => "ops",
        }
    }
}

impl Tenant {
    /// Whether it owns the brand (case-insensitive).
    pub fn owns_brand(&self, brand: &str) -> bool {
        self.brand_keys.iter().any(|key| *key == match_key(brand))
    }

    /// Whether it may rank with the profile.
    pub fn may_use_profile(&self, profile: &str) -> bool {
        self.profiles.is_empty() || self.profiles.iter().any(|p| p == profile)
    }
}

/// Who is calling, as the interceptor found out.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No key.
    Anonymous,
    /// A valid key.
    Tenant(Arc<Tenant>),
}

/// Why a key was refused; the key itself is never logged or echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header is not `Bearer <key>`.
    #[error("the authorization header must be 'Bearer <key>'")]
    Malformed,
    /// No tenant has this key (unknown or revoked).
    #[error("unknown or revoked API key")]
    UnknownKey,
}

/// The SHA-256 of a key, hex.
pub fn key_hash(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A new random key: `rmk_` and 32 random bytes, base64url.
pub fn new_key() -> Result<String, getrandom::Error> {
    use base64::Engine;
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("rmk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// Every tenant by the hash of each of its keys, built once per config so a
/// call's authentication only hashes and compares.
#[derive(Debug, Default)]
pub struct Keyring {
    keys: Vec<(String, Arc<Tenant>)>,
}

impl Keyring {
    /// The keyring of a config's tenants.
    pub fn new(config: &Config) -> Self {
        let mut keys = Vec::new();
        for (name, tenant) in &config.tenants {
            let resolved = Arc::new(Tenant {
                name: name.clone(),
                role: tenant.role,
                brand_keys: tenant.brands.iter().map(|brand| match_key(brand)).collect(),
                profiles: tenant.profiles.clone(),
                default_profile: tenant.default_profile.clone(),
            });
            keys.extend(tenant.key_sha256.iter().map(|hash| (hash.clone(), Arc::clone(&resolved))));
        }
        Self { keys }
    }

    /// Finds the caller for an `authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let Some(header) = header else {
            return Ok(Caller::Anonymous);
        };
        let key =
            header.strip_prefix("Bearer ").map(str::trim).filter(|key| !key.is_empty()).ok_or(AuthError::Malformed)?;
        let presented = key_hash(key);
        // Every stored hash is compared, matched or not, so timing says nothing
        // about which tenant (if any) holds a key.
        let mut found = None;
        for (stored, tenant) in &self.keys {
            if bool::from(presented.as_bytes().ct_eq(stored.as_bytes())) {
                found = Some(tenant);
            }
        }
        found.map(|tenant| Caller::Tenant(Arc::clone(tenant))).ok_or(AuthError::UnknownKey)
    }
}

/// Why one item may not be written.
#[derive(Debug, Clone)]
pub struct Denial {
    /// The offending fields.
    pub violations: Vec<FieldViolation>,
}

impl Denial {
    fn one(field: String, description: impl Into<String>) -> Self {
        Self { violations: vec![FieldViolation::new(field, description)] }
    }
}

/// Whether `tenant` may write `center` over `existing` (None = a new id).
/// `prefix` is the item's path in its request (`centers[3]`).
pub fn may_write_center(
    tenant: &Tenant,
    existing: Option<&RepairCenter>,
    center: &RepairCenter,
    prefix: &str,
) -> Result<(), Denial> {
    let field = |name: &str| if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
    if tenant.role == Role::Ops {
        return Ok(());
    }
    if let Some(existing) = existing
        && existing.owner != tenant.name
    {
        return Err(Denial::one(field("id"), "belongs to another tenant"));
    }
    match tenant.role {
        Role::Bank => Err(Denial::one(field("id"), "bank keys cannot write the catalog")),
        Role::Provider => {
            let mut violations = Vec::new();
            if center.kind != CenterKind::ThirdParty {
                violations.push(FieldViolation::new(field("kind"), "a provider writes only THIRD_PARTY centers"));
            }
            for (i, support) in center.brands.iter().enumerate() {
                if support.authorized {
                    violations.push(FieldViolation::new(
                        field(&format!("brands[{i}].authorized")),
                        "a provider cannot mark a center authorized",
                    ));
                }
            }
            if violations.is_empty() { Ok(()) } else { Err(Denial { violations }) }
        }
        Role::Manufacturer => {
            let violations: Vec<FieldViolation> = center
                .brands
                .iter()
                .enumerate()
                .filter(|(_, support)| support.authorized && !tenant.owns_brand(support.brand()))
                .map(|(i, support)| {
                    FieldViolation::new(
                        field(&format!("brands[{i}].authorized")),
                        format!("{} is not a brand this manufacturer owns", support.brand()),
                    )
                })
                .collect();
            if violations.is_empty() { Ok(()) } else { Err(Denial { violations }) }
        }
        Role::Ops => Ok(()),
    }
}

/// Whether `tenant` may delete `existing`.
pub fn may_delete_center(tenant: &Tenant, existing: &RepairCenter) -> Result<(), Denial> {
    match tenant.role {
        Role::Ops => Ok(()),
        Role::Bank => Err(Denial::one("id".into(), "bank keys cannot write the catalog")),
        Role::Manufacturer | Role::Provider if existing.owner == tenant.name => Ok(()),
        Role::Manufacturer | Role::Provider => Err(Denial::one("id".into(), "belongs to another tenant")),
    }
}

/// Whether `tenant` may write the brand named `brand`.
pub fn may_write_brand(tenant: &Tenant, brand: &str) -> Result<(), Denial> {
    match tenant.role {
        Role::Ops => Ok(()),
        Role::Manufacturer if tenant.owns_brand(brand) => Ok(()),
        Role::Manufacturer => {
            Err(Denial::one("brand.name".into(), format!("{brand} is not a brand this manufacturer owns")))
        }
        Role::Bank | Role::Provider => {
            Err(Denial::one("brand.name".into(), "only a brand's manufacturer or ops may write it"))
        }
    }
}

#[cfg(test)]
mod tests {
    use repairmatch_core::model::BrandSupport;

    use super::*;
    use crate::config::TenantConfig;

    fn tenant(name: &str, role: Role, brands: &[&str]) -> Tenant {
        Tenant {
            name: name.into(),
            role,
            brand_keys: brands.iter().map(|b| match_key(b)).collect(),
            profiles: vec![],
            default_profile: None,
        }
    }

    fn center(owner: &str, kind: CenterKind, authorized_brand: Option<&str>) -> RepairCenter {
        let mut center = repairmatch_datagen::generate(1, 1).centers.remove(0);
        center.owner = owner.into();
        center.kind = kind;
        center.brands = vec![BrandSupport::new(authorized_brand.unwrap_or("PAX"), authorized_brand.is_some(), &[])];
        center
    }

    #[test]
    fn keys_authenticate_by_hash_and_unknown_keys_do_not() {
        let key = new_key().unwrap();
        assert!(key.starts_with("rmk_") && key.len() > 40);
        let mut config = Config::default();
        config.tenants.insert(
            "icbc".into(),
            TenantConfig { role: Role::Bank, key_sha256: vec![key_hash(&key)], ..TenantConfig::default() },
        );
        let keyring = Keyring::new(&config);
        let Ok(Caller::Tenant(found)) = keyring.authenticate(Some(&format!("Bearer {key}"))) else { panic!() };
        assert_eq!((found.name.as_str(), found.role), ("icbc", Role::Bank));
        assert!(matches!(keyring.authenticate(None), Ok(Caller::Anonymous)));
        assert_eq!(keyring.authenticate(Some("Bearer rmk_nope")).unwrap_err(), AuthError::UnknownKey);
        assert_eq!(keyring.authenticate(Some(&key)).unwrap_err(), AuthError::Malformed);
        assert_eq!(keyring.authenticate(Some("Bearer ")).unwrap_err(), AuthError::Malformed);
    }

    #[test]
    fn manufacturers_authorize_only_their_own_brands() {
        let pax = tenant("mfr-pax", Role::Manufacturer, &["PAX"]);
        assert!(may_write_center(&pax, None, &center("", CenterKind::Authorized, Some("pax")), "").is_ok());
        let denial = may_write_center(&pax, None, &center("", CenterKind::Authorized, Some("Verifone")), "centers[2]")
            .unwrap_err();
        assert_eq!(denial.violations[0].field, "centers[2].brands[0].authorized");
        assert!(may_write_center(&pax, None, &center("", CenterKind::ThirdParty, None), "").is_ok(), "listing is fine");
    }

    #[test]
    fn providers_write_only_unauthorized_third_party_centers() {
        let provider = tenant("provider-a", Role::Provider, &[]);
        assert!(may_write_center(&provider, None, &center("", CenterKind::ThirdParty, None), "").is_ok());
        let denial =
            may_write_center(&provider, None, &center("", CenterKind::Authorized, Some("PAX")), "").unwrap_err();
        let fields: Vec<&str> = denial.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["kind", "brands[0].authorized"]);
    }

    #[test]
    fn nobody_but_ops_touches_another_tenants_center() {
        let theirs = center("provider-b", CenterKind::ThirdParty, None);
        let provider = tenant("provider-a", Role::Provider, &[]);
        assert!(may_write_center(&provider, Some(&theirs), &theirs, "").is_err());
        assert!(may_delete_center(&provider, &theirs).is_err());
        let ops = tenant("ops", Role::Ops, &[]);
        assert!(may_write_center(&ops, Some(&theirs), &theirs, "").is_ok());
        assert!(may_delete_center(&ops, &theirs).is_ok());
        let owner = tenant("provider-b", Role::Provider, &[]);
        assert!(may_delete_center(&owner, &theirs).is_ok());
    }

    #[test]
    fn banks_cannot_write_and_brands_belong_to_their_makers() {
        let bank = tenant("icbc", Role::Bank, &[]);
        assert!(may_write_center(&bank, None, &center("", CenterKind::ThirdParty, None), "").is_err());
        assert!(may_write_brand(&bank, "PAX").is_err());
        assert!(may_write_brand(&tenant("mfr-pax", Role::Manufacturer, &["PAX"]), "pax").is_ok());
        assert!(may_write_brand(&tenant("mfr-pax", Role::Manufacturer, &["PAX"]), "Sunmi").is_err());
    }
}
