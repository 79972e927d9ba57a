# English: the default language of repairmatch's answers, and the wording
# every test and client has read since the first release. Keep it as it is.
#
# Each message is said to a merchant through a bank app (reasons, guidance,
# exclusions) or to the app's developer (field violations, errors). The
# service formats numbers before they get here: $distance_km is "10.4",
# money is whole ("342.00 CNY", through `money` below), counts are numbers
# that plural selectors can read.

## Formats

# Money: $amount in major units with the currency's ISO 4217 decimals, $currency its code.
money = { $amount } { $currency }

# Lists: between items, and before the last.
list-and-separator = {", "}
list-and-last = {", "}
list-or-separator = {" or "}
list-or-last = {" or "}
list-clauses-separator = {"; "}
list-clauses-last = {"; "}

## Service modes and faults, as they appear inside sentences

mode-walk-in = walk-in
mode-onsite = onsite
mode-mail-in = mail-in
mode-exchange = exchange
mode-remote = remote

fault-screen = screen
fault-keypad = keypad
fault-printer = printer
fault-card-reader = card reader
fault-battery-power = battery/power
fault-connectivity = connectivity
fault-software = software
fault-tamper = tamper
fault-other = other
# No fault category was given.
fault-unspecified = these

## Why a center is in the answer (one short line each)

reason-deploying-bank-service-point = the deploying bank's designated service point
reason-authorized = authorized { $brand } center
reason-model-listed = repairs the { $model }
reason-warranty-covered = repair covered by the warranty
reason-distance = { $distance_km } km away
reason-beyond-trip-cap = beyond the { $cap_km } km trip cap: no walk-in or onsite visit
reason-rated = rated { $average } from { $count } reviews
reason-no-reviews = no reviews yet
reason-quote = quotes { $low }–{ $high }
reason-no-price = no published price for this fault
# The center's own guarantee on its repair, and its service terms' address.
reason-repair-warranty = { $days }-day warranty on the repair
reason-service-terms = service terms: { $url }
# $hours: rounded up to a whole hour; $modes: the usable service modes.
reason-back-in-service = back in service in about { $hours } h ({ $modes })
reason-hours-unknown = hours unknown

## Next steps

guidance-tamper = Tamper alert: do not power-cycle or open the terminal. Only a center authorized for { $brand } with key-injection facilities can re-key it; otherwise ask for an exchange unit.
guidance-bank-deployed = This terminal was deployed by { $bank }: go through its service channel first; it may replace the unit.
guidance-in-warranty = In warranty: go to a center that honours the warranty and bring the warranty card and proof of purchase.
guidance-check-purchase-date = Check the purchase date: { $brand } terminals carry a { $months }-month warranty, repaired free at authorized centers.
guidance-out-of-warranty = Out of warranty: compare quotes; with an independent repairer agree scope, cost and delivery time in writing.
# $channel: the bank or brand whose hotline comes first.
guidance-remote-first = Software and connectivity faults are often fixed remotely: try { $channel }'s hotline before moving the terminal.
guidance-book-appointment = Book an appointment where you can, and bring any documents the center asks for.
guidance-check-repair-terms = Before handing the terminal over, check the center's warranty on the repair and its service terms.
guidance-do-not-open = Do not open the terminal yourself: it is tamper-protected, and opening it erases its keys and voids the warranty.
guidance-after-repair = After the repair, run a test transaction, update the firmware and re-bind the merchant account if asked.

## Why an answer is empty (the first guidance line)

diagnosis-unknown-brand = "{ $brand }" is not a brand in the catalog: no repair center lists it and no support channel is on file for it. Check the brand name on the terminal's label (printed with the model and serial number, usually underneath) and ask again.
diagnosis-nobody-covers-with-support = No repair center covers this location for { $brand } terminals: use the remote support channels; they can arrange mail-in repair or an exchange unit.
diagnosis-nobody-covers = No repair center covers this location for { $brand } terminals, and no support channel is on file for { $brand }.
# $count centers serve the merchant; $complete is "no" when more were not looked at.
# $causes: diagnosis-cause lines.
diagnosis-none-fits =
    { $complete ->
        [yes]
            { $count ->
                [one] { $count } repair center for { $brand } covers
               *[other] { $count } repair centers for { $brand } cover
            }
       *[no] { $count } or more repair centers for { $brand } cover
    } this location, but none fits this request. What ruled them out: { $causes }.
# One filter of the request and how many centers it turned down.
diagnosis-cause =
    { $cause } ({ $count ->
        [one] { $count } center
       *[other] { $count } centers
    })

cause-model = the model { $model }, which is not among the { $brand } models they list
cause-fault = the fault, as they do not repair { $fault } faults
cause-distance-cap = the { $cap_km } km trip cap, as they are farther and offer only walk-in or onsite visits
cause-service-mode = the service modes asked for, as they do not offer { $modes }
cause-rating-best = the minimum rating { $min_rating }, as the best of them is rated { $best }
cause-rating-unrated = the minimum rating { $min_rating }, as they have no reviews yet
cause-price-currency = the price cap in { $cap_currency }, as they quote in { $quoted }
cause-above-price-cap = the price cap of { $cap }, as their lowest quote for { $fault } faults is { $lowest }
cause-unpriced = the price cap, as they publish no price for { $fault } faults
cause-repair-warranty-unpublished = the { $min_days }-day minimum warranty on the repair, as none of them publishes one
cause-repair-warranty-short = the { $min_days }-day minimum warranty on the repair, as the longest they give is { $days } days
cause-closed = the opening time asked for, as they are closed then
cause-tamper-policy = the tamper rule: a tampered terminal needs a center authorized for { $brand } with key injection, or an exchange, and they offer neither
cause-remote-cannot-fix = the fault, as all they offer here is a remote session, which cannot fix { $fault } faults

## Why an expected center is not in the answer (Exclusion.detail)

exclusion-not-found = no repair center has this id
exclusion-inactive = the center is inactive
exclusion-brand = does not repair { $brand }
exclusion-model = repairs { $brand } but not the { $model }
exclusion-fault = does not repair { $fault } faults
exclusion-coverage = the merchant is outside its coverage ({ $distance_km } km away)
exclusion-distance-cap = { $distance_km } km is beyond the { $cap_km } km trip cap
exclusion-service-mode = offers none of the wanted service modes
exclusion-unrated = has no reviews
exclusion-rated-below = rated { $average }, below { $min_rating }
exclusion-unpriced = publishes no price for this fault
exclusion-other-currency = prices in { $currency }, not { $cap_currency }
exclusion-above-price-cap = its lowest price for this fault, { $lowest }, is above the cap
exclusion-repair-warranty-unpublished = publishes no warranty on its repairs
exclusion-repair-warranty-short = guarantees its repairs for { $days } days, fewer than the { $min_days } asked
exclusion-closed = closed at the requested time
exclusion-other-banks-only = a bank service point takes only terminals its banks deployed
exclusion-tamper-policy = a tampered terminal needs a center authorized for the brand with key injection, or an exchange
exclusion-remote-cannot-fix = a remote session cannot fix this fault and no other wanted mode is usable

## What is wrong with a field of a Find request (google.rpc.BadRequest)

violation-required = is required
violation-too-long = must be at most { $max } characters
violation-latitude = must be a number from -90 to 90
violation-longitude = must be a number from -180 to 180
violation-currency-code = must be an ISO 4217 currency code, such as CNY or USD
violation-negative = must not be negative
violation-unknown-value = unknown value { $value }
violation-unknown-or-unspecified = unknown or unspecified value { $value }
violation-bank-id-required = is required for a bank-deployed terminal
violation-future-date = must not be in the future
violation-date-format = must be a date as YYYY-MM-DD
violation-distance-cap = must be from 0 (the profile's cap) to { $max_km }
violation-min-rating = must be 0 (none) or from 1 to 5
violation-timestamp = is not a valid timestamp
# $profile is quoted.
violation-unknown-profile = unknown ranking profile { $profile }
violation-too-many-ids = at most { $max } ids
violation-page-token-malformed = is malformed
violation-page-token-other-query = was issued for a different query
# $bank_id is quoted.
violation-unknown-bank = { $bank_id } is not a bank in the catalog
violation-country-code = must be an ISO 3166-1 alpha-2 code: two upper-case letters, like CN
violation-repair-warranty-days = must be at most { $max_days } (ten years)

## Errors' human text (google.rpc.LocalizedMessage; Status.message stays English)

# $violations: violation-item lines.
error-invalid-argument = invalid argument: { $violations }
violation-item = { $field }: { $description }
# $id and $name are quoted.
error-repair-center-not-found = repair center { $id } not found
error-brand-not-found = brand { $name } not found
error-unauthenticated = a valid API key is required
error-permission-denied = the caller may not do this
error-profile-not-allowed = tenant { $tenant } may not use ranking profile { $profile }
error-stale-etag = the etag is not the current one: read the center again
error-rate-limited = tenant { $tenant } is over its rate limit; retry in { $retry_ms } ms
error-store-unavailable = the catalog store is unavailable: nothing was written; retry later
error-storage = internal storage failure
error-internal = internal error
