//! Reads: a Find from request to answer in one place, and the catalog's
//! lookups and listings.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use repairmatch_core::Catalog;
use repairmatch_core::find::{EXACT_TOTAL_LIMIT, find_pages};
use repairmatch_core::i18n::{Language, Text};
use repairmatch_core::model::{Bank, Brand, CenterKind, RepairCenter, match_key};
use repairmatch_proto::v1 as pb;

use super::{App, LiveConfig, page_token};
use crate::auth::{Caller, Role, Tenant};
use crate::cache::{CacheKey, FindAnswer};
use crate::convert;
use crate::convert::find::FindResponseParts;
use crate::error::ServiceError;

/// How many pages after a freshly ranked one are ranked with it and cached.
const PAGES_RANKED_AHEAD: usize = 4;

/// Filters of a catalog listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListFilter {
    /// Brand, case-insensitive.
    pub brand: Option<String>,
    /// Owner (ops only).
    pub owner: Option<String>,
    /// Kind.
    pub kind: Option<CenterKind>,
}

/// Who may read: any tenant, and anonymous callers when the config allows.
pub fn authorize_read(config: &LiveConfig, caller: &Caller) -> Result<(), ServiceError> {
    match caller {
        Caller::Tenant(_) => Ok(()),
        Caller::Anonymous if config.config.auth.allow_anonymous_find => Ok(()),
        Caller::Anonymous => Err(ServiceError::Unauthenticated("an API key is required".into())),
    }
}

/// Who may ask, and the profile their request ranks with: what a Find
/// depends on besides the request, the catalog and the config.
pub fn resolve_profile(
    live: &LiveConfig,
    caller: &Caller,
    request: &pb::FindRepairCenterRequest,
) -> Result<String, ServiceError> {
    authorize_read(live, caller)?;
    let config = &live.config;
    let default_profile = match caller {
        Caller::Tenant(tenant) => tenant.default_profile.as_deref(),
        Caller::Anonymous => None,
    }
    .unwrap_or(&config.find.default_profile);
    let profile = if request.ranking_profile.is_empty() { default_profile } else { &request.ranking_profile };
    if let Caller::Tenant(tenant) = caller
        && config.profiles.contains_key(profile)
        && !tenant.may_use_profile(profile)
    {
        return Err(ServiceError::ProfileNotAllowed { tenant: tenant.name.clone(), profile: profile.to_owned() });
    }
    Ok(profile.to_owned())
}

/// `FindRepairCenter`, whole: who may ask, what the request means under the
/// config it started with, the ranking as of `now`, and the answer. The gRPC
/// adapter (through the cache) and `repairmatch explain` both call this, so
/// they cannot differ.
pub fn find(
    live: &LiveConfig,
    catalog: &Catalog,
    caller: &Caller,
    request: &pb::FindRepairCenterRequest,
    now: DateTime<Utc>,
) -> Result<pb::FindRepairCenterResponse, ServiceError> {
    first_page(live, catalog, caller, request, now).map(FindResponseParts::into_message)
}

/// The first page of a Find: who may ask and with which profile, then the
/// ranking; its centers still to be filled in or spliced.
fn first_page(
    live: &LiveConfig,
    catalog: &Catalog,
    caller: &Caller,
    request: &pb::FindRepairCenterRequest,
    now: DateTime<Utc>,
) -> Result<FindResponseParts, ServiceError> {
    let profile_name = resolve_profile(live, caller, request)?;
    let mut pages = rank(live, catalog, &profile_name, request, now, 1)?;
    Ok(pages.swap_remove(0))
}

/// The rest of a Find once [`resolve_profile`] has allowed the caller and
/// named the profile: the request validated, ranked on `catalog`, answered;
/// with `pages` > 1, the answers to the pages after it too, from the same
/// ranking (each page's token asks for the next).
fn rank(
    live: &LiveConfig,
    catalog: &Catalog,
    profile_name: &str,
    request: &pb::FindRepairCenterRequest,
    now: DateTime<Utc>,
    pages: usize,
) -> Result<Vec<FindResponseParts>, ServiceError> {
    let config = &live.config;
    // The core pages by keyset; the version the token also carries matters
    // only to the cache (see `App::find`).
    let keyset_request;
    let request = if request.page_token.is_empty() {
        request
    } else {
        let (_, keyset) = page_token::unwrap(&request.page_token)?;
        keyset_request = pb::FindRepairCenterRequest { page_token: keyset, ..request.clone() };
        &keyset_request
    };
    let query = convert::find::find_query_from_proto(
        request,
        profile_name,
        |name| config.profiles.contains_key(name),
        now.date_naive(),
    )
    .map_err(ServiceError::InvalidArgument)?;
    let language = Language::negotiate(&request.language_code);
    let profile = &config.profiles[&query.profile_name];
    // Naming a bank the catalog does not know would rank no designated
    // service point first and name an unknown bank in the guidance: refuse it.
    if let Some(bank_id) = query.ownership.deploying_bank()
        && catalog.bank(bank_id).is_none()
    {
        let text = Text::new("violation-unknown-bank").with("bank_id", format!("{bank_id:?}"));
        return Err(ServiceError::invalid_text("bank_id", text));
    }
    let outcomes = find_pages(catalog, &query, profile, now, pages, EXACT_TOTAL_LIMIT)
        .map_err(|error| ServiceError::invalid_text("page_token", error.text()))?;
    let responses = outcomes
        .iter()
        .map(|outcome| {
            let mut response =
                convert::find::find_response_to_proto(outcome, &query.profile_name, live.version, language);
            let token = &mut response.message.next_page_token;
            if !token.is_empty() {
                *token = page_token::wrap(catalog.version(), token);
            }
            response
        })
        .collect();
    Ok(responses)
}

/// `request` with its language named the one way the answer names it
/// (`""` for English, else the chosen language's tag), so requests that
/// differ only in how they spell a language (`zh`, `zh-CN`, `zh-Hans`; `fr`,
/// `en`, none) share cached answers, and those in different languages don't.
fn canonical_language(request: &pb::FindRepairCenterRequest) -> Cow<'_, pb::FindRepairCenterRequest> {
    // A tag too long to accept stays as sent, for validation to refuse.
    if request.language_code.len() > convert::find::MAX_LANGUAGE_CODE_CHARS {
        return Cow::Borrowed(request);
    }
    let canonical = match Language::negotiate(&request.language_code) {
        Language::English => "",
        other => other.tag(),
    };
    if request.language_code == canonical {
        Cow::Borrowed(request)
    } else {
        Cow::Owned(pb::FindRepairCenterRequest { language_code: canonical.to_owned(), ..request.clone() })
    }
}

impl App {
    /// Answers a Find under the config in force and the current snapshot,
    /// from the result cache when it holds the answer.
    pub async fn find(
        &self,
        caller: &Caller,
        request: &pb::FindRepairCenterRequest,
        now: DateTime<Utc>,
    ) -> Result<Arc<FindAnswer>, ServiceError> {
        let live = self.config();
        let catalog = self.catalog();
        let request = canonical_language(request);
        let request = request.as_ref();
        let exact = self.inner.inexact_version.load(std::sync::atomic::Ordering::SeqCst) != catalog.version();
        let Some(cache) = self.inner.cache.as_ref().filter(|_| exact) else {
            self.metrics().find_computed.inc();
            let page = first_page(&live, &catalog, caller, request, now)?;
            return Ok(Arc::new(FindAnswer::from_parts(page, &self.inner.center_encodings)));
        };
        // Who may ask, and with which profile, depends on the caller: decided
        // before the cache, and part of the key.
        let profile = resolve_profile(&live, caller, request)?;
        let date = now.date_naive();
        if !request.page_token.is_empty() {
            // A later page belongs to the ranking its first page came from:
            // served from that ranking while any tier still holds it, even
            // though the catalog has changed since.
            let (ranked_at, _) = page_token::unwrap(&request.page_token)?;
            if ranked_at != catalog.version() {
                let key = CacheKey::new(request, &profile, date, ranked_at, live.version);
                if let Some(page) = cache.get(&key, self.metrics()).await {
                    return Ok(page);
                }
            }
        }
        let key = CacheKey::new(request, &profile, date, catalog.version(), live.version);
        // A fresh ranking covers the pages after this one too: cached for a
        // caller who pages on, so it gets the rest of the ranking it started
        // with from any replica, even as the catalog changes.
        let mut ranked_ahead = Vec::new();
        let page = cache
            .get_or_compute(key, self.metrics(), || {
                let mut pages = rank(&live, &catalog, &profile, request, now, 1 + PAGES_RANKED_AHEAD)?;
                let first = pages.remove(0);
                ranked_ahead = pages;
                Ok(FindAnswer::from_parts(first, &self.inner.center_encodings))
            })
            .await?;
        if !ranked_ahead.is_empty() {
            self.cache_pages_ahead(
                request.clone(),
                profile,
                date,
                catalog.version(),
                live.version,
                &page,
                ranked_ahead,
            );
        }
        Ok(page)
    }

    /// Encodes and caches the pages ranked after `first`, in the background:
    /// each under the key its caller will ask with (the previous page's
    /// token).
    #[allow(clippy::too_many_arguments)]
    fn cache_pages_ahead(
        &self,
        mut request: pb::FindRepairCenterRequest,
        profile: String,
        date: chrono::NaiveDate,
        catalog_version: u64,
        config_version: u64,
        first: &FindAnswer,
        pages: Vec<FindResponseParts>,
    ) {
        let app = self.clone();
        let mut token = first.next_page_token.clone();
        tokio::spawn(async move {
            let Some(cache) = app.inner.cache.as_ref() else { return };
            for page in pages {
                if token.is_empty() {
                    return;
                }
                request.page_token = std::mem::take(&mut token);
                let key = CacheKey::new(&request, &profile, date, catalog_version, config_version);
                let answer = FindAnswer::from_parts(page, &app.inner.center_encodings);
                token = answer.next_page_token.clone();
                cache.insert(key, Arc::new(answer)).await;
                app.metrics().find_pages_ahead.inc();
            }
        });
    }

    /// One center by id.
    pub fn repair_center(&self, caller: &Caller, id: &str) -> Result<Arc<RepairCenter>, ServiceError> {
        authorize_read(&self.config(), caller)?;
        self.inner
            .live
            .catalog
            .load()
            .center(id)
            .cloned()
            .ok_or_else(|| ServiceError::RepairCenterNotFound(id.to_owned()))
    }

    /// One brand by name.
    pub fn brand(&self, caller: &Caller, name: &str) -> Result<Brand, ServiceError> {
        authorize_read(&self.config(), caller)?;
        self.inner.live.catalog.load().brand(name).cloned().ok_or_else(|| ServiceError::BrandNotFound(name.to_owned()))
    }

    /// Brands by lower-cased name, after `after` (exclusive).
    pub fn brands(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Brand>, bool), ServiceError> {
        authorize_read(&self.config(), caller)?;
        let catalog = self.inner.live.catalog.load();
        Ok(page_after(catalog.brands(), |brand| match_key(&brand.name), after, limit))
    }

    /// A page of banks in id order, after `after`; whether more follow.
    pub fn banks(&self, caller: &Caller, after: Option<&str>, limit: usize) -> Result<(Vec<Bank>, bool), ServiceError> {
        authorize_read(&self.config(), caller)?;
        let catalog = self.inner.live.catalog.load();
        Ok(page_after(catalog.banks(), |bank| bank.id.clone(), after, limit))
    }

    /// Centers in id order for a listing: the caller's own, or any for ops.
    pub fn list_centers(
        &self,
        tenant: &Tenant,
        filter: &ListFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Arc<RepairCenter>>, bool), ServiceError> {
        let owner = match (&tenant.role, &filter.owner) {
            (Role::Ops, owner) => owner.clone(),
            (_, Some(owner)) if *owner != tenant.name => {
                return Err(ServiceError::PermissionDenied("only ops may list another tenant's centers".into()));
            }
            _ => Some(tenant.name.clone()),
        };
        let catalog = self.inner.live.catalog.load();
        let brand_key = filter.brand.as_deref().map(match_key);
        let mut page: Vec<Arc<RepairCenter>> = catalog
            .centers_by_id(after)
            .filter(|c| owner.as_ref().is_none_or(|owner| &c.owner == owner))
            .filter(|c| filter.kind.is_none_or(|kind| c.kind == kind))
            .filter(|c| brand_key.as_ref().is_none_or(|key| c.brand_support(key).is_some()))
            .take(limit + 1)
            .cloned()
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
    }
}

/// The first `limit` of `items` in `key` order after the key `after`, and
/// whether more follow: a listing's page out of a catalog map.
fn page_after<'a, T: Clone + 'a>(
    items: impl Iterator<Item = &'a T>,
    key: impl Fn(&T) -> String,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, bool) {
    let mut page: Vec<T> = items.filter(|item| after.is_none_or(|after| key(item).as_str() > after)).cloned().collect();
    page.sort_by_cached_key(|item| key(item));
    let more = page.len() > limit;
    page.truncate(limit);
    (page, more)
}
