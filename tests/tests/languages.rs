//! Answers in the caller's language, through a real server: a Find's
//! `language_code` chooses Simplified Chinese or English for the reasons,
//! guidance, exclusion details and an error's `LocalizedMessage`, and the
//! answer says which it used; the ranking, page tokens and English
//! `Status.message` do not change with it.

use repairmatch_proto::v1 as pb;
use repairmatch_tests::*;
use tonic::Code;
use tonic_types::StatusExt;

/// `request` asked in `language_code`.
fn in_language(request: &pb::FindRepairCenterRequest, language_code: &str) -> pb::FindRepairCenterRequest {
    pb::FindRepairCenterRequest { language_code: language_code.into(), ..request.clone() }
}

/// An authorized PAX center with key injection, `km` east, walk-in and exchange.
fn authorized_east(id: &str, km: f64) -> pb::RepairCenter {
    let mut center = center_east(id, km);
    center.kind = pb::RepairCenterKind::Authorized as i32;
    center.owner = "mfr-pax".into();
    center.brands[0].authorized = true;
    center.key_injection = true;
    center.service_modes = vec![pb::ServiceMode::WalkIn as i32, pb::ServiceMode::Exchange as i32];
    center.rating = Some(pb::Rating { average: 4.66, count: 590 });
    center.prices[0].min = Some(cny(34_200));
    center.prices[0].max = Some(cny(68_300));
    center.repair_warranty_days = 90;
    center.terms_url = "https://pax.example/service-terms".into();
    center
}

#[tokio::test]
async fn a_zh_hans_find_answers_in_chinese_with_yuan_and_kilometres() {
    let server =
        TestServer::start(&Fixture::with_centers(vec![authorized_east("auth", 3.5), center_east("indie", 6.0)])).await;
    let mut client = server.client().await;
    let request = find_request();
    let english = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    let chinese = client.find_repair_center(in_language(&request, "zh-Hans")).await.unwrap().into_inner();

    assert_eq!(english.language_code, "en");
    assert_eq!(chinese.language_code, "zh-Hans");
    // The same ranking, said in another language.
    assert_eq!(match_ids(&chinese), match_ids(&english));
    assert_eq!(match_ids(&chinese), ["auth", "indie"]);
    let top = &english.matches[0];
    assert_eq!(
        top.reasons,
        [
            "authorized PAX center".to_owned(),
            format!("{:.1} km away", top.distance_km),
            "rated 4.7 from 590 reviews".to_owned(),
            "quotes 342.00 CNY–683.00 CNY".to_owned(),
            "90-day warranty on the repair".to_owned(),
            "service terms: https://pax.example/service-terms".to_owned(),
            format!("back in service in about {:.0} h (walk-in, exchange)", top.downtime_hours.ceil()),
        ]
    );
    assert_eq!(
        chinese.matches[0].reasons,
        [
            "PAX 官方授权维修中心".to_owned(),
            format!("距离 {:.1} 公里", top.distance_km),
            "评分 4.7 分（590 条评价）".to_owned(),
            "报价 ¥342.00–¥683.00".to_owned(),
            "维修保修 90 天".to_owned(),
            "服务条款：https://pax.example/service-terms".to_owned(),
            format!("预计约 {:.0} 小时恢复收款（到店维修、换机）", top.downtime_hours.ceil()),
        ]
    );
    assert_eq!(
        chinese.guidance,
        [
            "请核对购买日期：PAX 终端保修 12 个月，保修期内可在官方授权维修中心免费维修。",
            "建议提前预约服务，并携带维修网点要求的相关材料。",
            "交机前，请向维修网点确认本次维修的保修期限及服务条款。",
            "不建议自行拆机维修：POS机带有防拆保护，拆机会清除密钥，并导致保修失效。",
            "维修完成后，请先做一笔测试交易，确认恢复正常；按提示更新固件，必要时重新绑定商户账户。",
        ]
    );
    assert_eq!(chinese.guidance.len(), english.guidance.len());
    // Names and contacts are data, not text: the same in every language.
    assert_eq!(chinese.remote_support, english.remote_support);
    assert_eq!(chinese.matches[0].center, english.matches[0].center);
    server.stop().await;
}

#[tokio::test]
async fn zh_cn_and_zh_choose_simplified_chinese_and_anything_else_english() {
    let server = TestServer::start(&Fixture::with_centers(vec![authorized_east("auth", 3.5)])).await;
    let mut client = server.client().await;
    let mut request = find_request();
    request.warranty =
        Some(pb::Warranty { status: pb::WarrantyStatus::InWarranty as i32, purchase_date: String::new() });
    let answer =
        |response: &pb::FindRepairCenterResponse| (response.matches[0].reasons.clone(), response.guidance.clone());

    let chinese = client.find_repair_center(in_language(&request, "zh-Hans")).await.unwrap().into_inner();
    assert!(chinese.guidance[0].starts_with("机具在保修期内"), "{:?}", chinese.guidance);
    assert!(chinese.matches[0].reasons.contains(&"可享受厂商保修".to_owned()), "{:?}", chinese.matches[0].reasons);
    for tag in ["zh-CN", "zh", "zh-SG", "zh-Hans-HK", "zh_cn"] {
        let response = client.find_repair_center(in_language(&request, tag)).await.unwrap().into_inner();
        assert_eq!(response.language_code, "zh-Hans", "{tag}");
        assert_eq!(answer(&response), answer(&chinese), "{tag}");
    }
    let english = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    assert!(english.guidance[0].starts_with("In warranty"), "{:?}", english.guidance);
    // Traditional Chinese is not Simplified: English, as for any other language.
    for tag in ["fr", "en", "en-GB", "zh-TW", "zh-Hant", "zh-HK", "klingon!"] {
        let response = client.find_repair_center(in_language(&request, tag)).await.unwrap().into_inner();
        assert_eq!(response.language_code, "en", "{tag}");
        assert_eq!(answer(&response), answer(&english), "{tag}");
    }
    server.stop().await;
}

#[tokio::test]
async fn exclusion_details_are_in_chinese() {
    let mut printers_only = center_east("printers", 3.0);
    printers_only.fault_categories = vec![pb::FaultCategory::Printer as i32];
    let mut short_warranty = center_east("short", 2.0);
    short_warranty.repair_warranty_days = 30;
    let centers = vec![printers_only, center_east("far", 45.0), short_warranty, center_east("unpublished", 2.5)];
    let server = TestServer::start(&Fixture::with_centers(centers)).await;
    let mut request = find_request();
    request.min_repair_warranty_days = 90;
    request.explain_center_ids =
        vec!["printers".into(), "far".into(), "nobody".into(), "short".into(), "unpublished".into()];
    let mut client = server.client().await;
    let english = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    let chinese = client.find_repair_center(in_language(&request, "zh-CN")).await.unwrap().into_inner();
    let details = |response: &pb::FindRepairCenterResponse| -> Vec<(String, i32, String)> {
        response.exclusions.iter().map(|e| (e.center_id.clone(), e.rule, e.detail.clone())).collect()
    };
    let (english, chinese) = (details(&english), details(&chinese));
    assert_eq!(chinese[0], ("printers".into(), pb::ExclusionRule::Fault as i32, "不维修屏幕故障".into()));
    assert_eq!(english[0].2, "does not repair screen faults");
    // About 45 km, said with the same number in both.
    let km = english[1].2.trim_start_matches("the merchant is outside its coverage (").trim_end_matches(" km away)");
    assert!(km.starts_with("4"), "{}", english[1].2);
    assert_eq!(
        chinese[1],
        ("far".into(), pb::ExclusionRule::Coverage as i32, format!("您不在该网点的服务范围内（相距 {km} 公里）"))
    );
    assert_eq!(chinese[2], ("nobody".into(), pb::ExclusionRule::NotFound as i32, "没有这个编号的维修网点".into()));
    let terms = pb::ExclusionRule::Terms as i32;
    assert_eq!(
        english[3],
        ("short".into(), terms, "guarantees its repairs for 30 days, fewer than the 90 asked".into())
    );
    assert_eq!(chinese[3], ("short".into(), terms, "维修保修 30 天，少于要求的 90 天".into()));
    assert_eq!(chinese[4], ("unpublished".into(), terms, "未公布维修保修期".into()));
    server.stop().await;
}

#[tokio::test]
async fn an_empty_answers_guidance_says_why_in_chinese() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0), center_east("b", 5.0)])).await;
    let mut client = server.client().await;
    let mut request = in_language(&find_request(), "zh-Hans");
    request.min_rating = 4.9;
    let response = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    assert!(response.matches.is_empty());
    assert_eq!(
        response.guidance[0],
        "您所在的位置有 2 家 PAX 维修网点，但都不符合本次查询的条件。排除原因：评分未达到 4.9 分，最高仅 4.5 分（2 家）。"
    );
    assert!(
        !response.guidance.iter().any(|line| line.contains("预约")),
        "no appointment to book: {:?}",
        response.guidance
    );

    request.min_rating = 0.0;
    request.max_price = Some(cny(5_000));
    let response = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    assert_eq!(
        response.guidance[0],
        "您所在的位置有 2 家 PAX 维修网点，但都不符合本次查询的条件。\
         排除原因：屏幕故障最低报价 ¥100.00，高于价格上限 ¥50.00（2 家）。"
    );

    request.max_price = None;
    request.min_repair_warranty_days = 180;
    let response = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    assert_eq!(
        response.guidance[0],
        "您所在的位置有 2 家 PAX 维修网点，但都不符合本次查询的条件。\
         排除原因：未公布维修保修期，达不到至少 180 天的要求（2 家）。"
    );

    request.min_repair_warranty_days = 0;
    request.location = Some(pb::LatLng { latitude: 64.1, longitude: -21.9 });
    let response = client.find_repair_center(request).await.unwrap().into_inner();
    assert_eq!(
        response.guidance[0],
        "您所在的位置暂无可维修 PAX 终端的维修网点：请通过远程支持渠道联系，对方可安排寄修或换机。"
    );
    server.stop().await;
}

#[tokio::test]
async fn invalid_argument_keeps_english_and_adds_a_chinese_localized_message() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let mut client = server.client().await;
    let mut request = find_request();
    request.location.as_mut().unwrap().latitude = 95.0;
    request.terminal.as_mut().unwrap().brand = " ".into();
    request.ownership = pb::Ownership::BankDeployed as i32;

    let english = client.find_repair_center(request.clone()).await.unwrap_err();
    assert!(english.get_details_localized_message().is_none(), "English needs no LocalizedMessage");
    let chinese = client.find_repair_center(in_language(&request, "zh-CN")).await.unwrap_err();
    assert_eq!(chinese.code(), Code::InvalidArgument);
    // Clients and logs read the English message and the BadRequest: unchanged.
    assert_eq!(chinese.message(), english.message());
    assert_eq!(
        chinese.message(),
        "invalid argument: location.latitude: must be a number from -90 to 90; terminal.brand: is required; \
         bank_id: is required for a bank-deployed terminal"
    );
    assert_eq!(bad_request_violations(&chinese), bad_request_violations(&english));
    let localized = chinese.get_details_localized_message().expect("a LocalizedMessage");
    assert_eq!(localized.locale, "zh-Hans");
    assert_eq!(
        localized.message,
        "请求参数有误，请修改后重试：location.latitude：纬度须为 -90 到 90 之间的数字；\
         terminal.brand：必须填写；bank_id：银行布放的POS机必须填写布放银行"
    );

    // The other fields' checks speak Chinese too.
    let mut request = in_language(&find_request(), "zh-Hans");
    request.country_code = "china".into();
    request.min_repair_warranty_days = 4_000;
    let status = client.find_repair_center(request).await.unwrap_err();
    assert_eq!(
        status.get_details_localized_message().unwrap().message,
        "请求参数有误，请修改后重试：country_code：须为 ISO 3166-1 alpha-2 国家或地区代码：两个大写字母，例如 CN；\
         min_repair_warranty_days：不能超过 3650 天（十年）"
    );

    // A page token from nowhere, a bank the catalog does not know.
    let mut request = in_language(&find_request(), "zh");
    request.page_token = "bm90LWEtdG9rZW4tYXQtYWxs".into();
    let status = client.find_repair_center(request).await.unwrap_err();
    assert_eq!(status.message(), "invalid argument: page_token: is malformed");
    assert_eq!(
        status.get_details_localized_message().unwrap().message,
        "请求参数有误，请修改后重试：page_token：格式不正确"
    );
    let mut request = in_language(&find_request(), "zh-Hans");
    request.ownership = pb::Ownership::BankDeployed as i32;
    request.bank_id = "nobank".into();
    let status = client.find_repair_center(request).await.unwrap_err();
    assert_eq!(
        status.get_details_localized_message().unwrap().message,
        "请求参数有误，请修改后重试：bank_id：系统中没有编号为 \"nobank\" 的银行"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_profile_the_tenant_may_not_use_is_refused_in_chinese_too() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let mut client = server.client_as(Some(key_of("icbc"))).await;
    let mut request = in_language(&find_request(), "zh-Hans");
    request.ranking_profile = "nearest".into();
    let status = client.find_repair_center(request).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "tenant icbc may not use ranking profile \"nearest\"");
    let localized = status.get_details_localized_message().expect("a LocalizedMessage");
    assert_eq!(
        (localized.locale.as_str(), localized.message.as_str()),
        ("zh-Hans", "机构 icbc 无权使用排序方案 \"nearest\"")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_language_tag_longer_than_bcp_47_asks_for_is_refused() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let request = in_language(&find_request(), &"zh-Hans".repeat(1_000));
    let status = server.client().await.find_repair_center(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        bad_request_violations(&status),
        [("language_code".to_owned(), "must be at most 35 characters".to_owned())]
    );
    server.stop().await;
}

/// The language is how the answer is said, not what is asked: a token
/// from a page in one language pages on in another (a merchant who switches
/// the app's language keeps their place), while the cache keeps the
/// languages' answers apart.
#[tokio::test]
async fn a_page_token_pages_on_in_another_language() {
    let centers = (0..25).map(|i| center_east(&format!("c{i:02}"), 0.5 + f64::from(i % 7))).collect();
    let server = TestServer::start(&Fixture::with_centers(centers)).await;
    let mut client = server.client().await;
    let mut request = find_request();
    request.page_size = 10;
    let first = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    request.page_token = first.next_page_token.clone();
    let second_english = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    let second_chinese = client.find_repair_center(in_language(&request, "zh-Hans")).await.unwrap().into_inner();
    assert_eq!(second_chinese.language_code, "zh-Hans");
    assert_eq!(match_ids(&second_chinese), match_ids(&second_english));
    assert_eq!(second_chinese.matches.iter().map(|m| m.rank).collect::<Vec<_>>(), (11..=20).collect::<Vec<u32>>());
    assert!(
        second_chinese.matches[0].reasons.iter().any(|r| r.starts_with("距离 ")),
        "{:?}",
        second_chinese.matches[0]
    );
    assert!(second_english.matches[0].reasons.iter().any(|r| r.ends_with(" km away")));
    // And on to the last page, in Chinese, with the Chinese page's token.
    let third = client
        .find_repair_center(pb::FindRepairCenterRequest {
            page_token: second_chinese.next_page_token.clone(),
            ..in_language(&request, "zh")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(third.matches.iter().map(|m| m.rank).collect::<Vec<_>>(), (21..=25).collect::<Vec<u32>>());
    assert!(third.next_page_token.is_empty());
    server.stop().await;
}
