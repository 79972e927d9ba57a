//! An answer with no match still says why, through a real server: an unknown
//! brand, or the one filter that turned down the centers that do cover the
//! merchant, so the merchant knows what to relax.

use repairmatch_proto::v1 as pb;
use repairmatch_tests::*;

async fn find(centers: Vec<pb::RepairCenter>, request: pb::FindRepairCenterRequest) -> pb::FindRepairCenterResponse {
    let server = TestServer::start(&Fixture::with_centers(centers)).await;
    let response = server.client().await.find_repair_center(request).await.expect("find").into_inner();
    server.stop().await;
    response
}

fn channels(response: &pb::FindRepairCenterResponse) -> Vec<(String, String)> {
    let support = response.remote_support.as_ref().expect("remote support is always present");
    support.channels.iter().map(|c| (c.provider_type.clone(), c.name.clone())).collect()
}

/// The guidance line that contains `needle`, or a panic listing them all.
fn line_with<'a>(response: &'a pb::FindRepairCenterResponse, needle: &str) -> &'a str {
    let found = response.guidance.iter().find(|line| line.contains(needle));
    found.unwrap_or_else(|| panic!("no guidance line has {needle:?}: {:#?}", response.guidance))
}

#[tokio::test]
async fn an_unknown_brand_is_named_as_the_cause() {
    let mut request = find_request();
    request.terminal.as_mut().unwrap().brand = "Pacs".into();
    let response = find(vec![center_east("a", 3.0)], request.clone()).await;
    assert!(response.matches.is_empty());
    let line = line_with(&response, "\"Pacs\"");
    assert!(line.contains("not a brand in the catalog"), "{line}");
    assert!(line.contains("label"), "{line}");
    assert!(line.contains("no support channel is on file"), "{line}");
    assert!(channels(&response).is_empty(), "nothing is on file for an unknown brand");
    assert!(
        response
            .guidance
            .iter()
            .all(|g| !g.contains("remote support channels") && !g.contains("No repair center covers")),
        "no pointing at channels that do not exist, nor blaming the location: {:#?}",
        response.guidance
    );

    // The deploying bank is known: its channel is there, and said to be.
    request.ownership = pb::Ownership::BankDeployed as i32;
    request.bank_id = "icbc".into();
    let response = find(vec![center_east("a", 3.0)], request).await;
    assert_eq!(channels(&response), [("bank".to_owned(), "Industrial and Commercial Bank of China".to_owned())]);
    line_with(&response, "not a brand in the catalog");
}

#[tokio::test]
async fn a_known_brand_always_has_its_channel_even_with_nobody_near() {
    let mut request = find_request();
    request.terminal.as_mut().unwrap().brand = "pax".into();
    request.location = Some(pb::LatLng { latitude: 64.1, longitude: -21.9 });
    let response = find(vec![center_east("a", 3.0)], request).await;
    assert!(response.matches.is_empty());
    assert_eq!(channels(&response), [("brand".to_owned(), "PAX".to_owned())]);
    line_with(&response, "No repair center covers this location for PAX");
}

#[tokio::test]
async fn a_price_cap_in_a_currency_nobody_here_quotes_names_the_currencies_they_do() {
    let mut request = find_request();
    request.max_price = Some(pb::Money { currency_code: "USD".into(), amount_minor_units: 10_000 });
    let response = find(vec![center_east("a", 3.0), center_east("b", 5.0)], request).await;
    assert!(response.matches.is_empty());
    let line = line_with(&response, "price cap in USD");
    assert!(line.contains("they quote in CNY"), "{line}");
    assert!(line.contains("2 repair centers for PAX cover this location"), "{line}");
    assert!(response.guidance.iter().all(|g| !g.contains("No repair center covers")), "{:#?}", response.guidance);
    assert_eq!(channels(&response), [("brand".to_owned(), "PAX".to_owned())]);
}

#[tokio::test]
async fn a_minimum_rating_above_every_center_here_is_named_with_the_best_rating() {
    let mut fair = center_east("fair", 4.0);
    fair.rating = Some(pb::Rating { average: 3.9, count: 40 });
    let mut request = find_request();
    request.min_rating = 4.6;
    let response = find(vec![center_east("good", 3.0), fair], request).await;
    assert!(response.matches.is_empty());
    let line = line_with(&response, "minimum rating 4.6");
    assert!(line.contains("the best of them is rated 4.5"), "{line}");
    assert!(response.guidance.iter().all(|g| !g.contains("No repair center covers")), "{:#?}", response.guidance);
}
