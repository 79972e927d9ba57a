//! The human text of an answer, in the caller's language.
//!
//! The core never writes a sentence: it says *what* to tell the merchant as a
//! [`Text`], a message id and typed arguments (a brand, a distance, money, a
//! list of service modes…), and the service renders each text once, in the
//! [`Language`] the request chose. The sentences live in Project Fluent
//! message files, one per language, under `locales/` in this crate
//! (`locales/en/repairmatch.ftl`, `locales/zh-Hans/repairmatch.ftl`), compiled
//! into the binary so a running service never reads a file.
//!
//! Numbers are formatted here, before Fluent sees them, so each has exactly
//! the decimals the sentence promises (`10.4 km`, `4.7`); money goes through
//! the language's own `money` message, so English reads `342.00 CNY` and
//! Chinese `¥342.00`. Counts stay numbers, so each language picks its plural
//! forms (`1 center`, `2 centers`; Chinese has one form).

use std::borrow::Cow;
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_syntax::ast;
use rustc_hash::FxHashMap;
use unic_langid::LanguageIdentifier;

use crate::model::Money;

/// A language the answers are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    /// English: the default, and the language of every unsupported tag.
    English,
    /// Simplified Chinese.
    SimplifiedChinese,
}

impl Language {
    /// Every shipped language, the default first.
    pub const ALL: [Language; 2] = [Language::English, Language::SimplifiedChinese];

    /// The BCP 47 tag an answer names its language with.
    pub fn tag(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::SimplifiedChinese => "zh-Hans",
        }
    }

    /// The language to answer a request's BCP 47 `tag` in (case-insensitive,
    /// `-` or `_`). Chinese written in Simplified characters is `zh-Hans`,
    /// `zh-Hans-*`, and `zh` with no script unless its region writes
    /// Traditional (Taiwan, Hong Kong, Macao): so `zh`, `zh-CN`, `zh-SG`
    /// choose it, `zh-TW` and `zh-Hant` do not. Extensions and private use
    /// (`-u-…`, `-x-…`) are ignored. Everything else, an empty or malformed
    /// tag included, is English: a caller always gets an answer.
    pub fn negotiate(tag: &str) -> Self {
        // unic-langid parses language, script, region and variants only:
        // cut the tag before its first singleton (`u`, `t`, `x`…).
        let subtags: Vec<&str> = tag.trim().split(['-', '_']).take_while(|subtag| subtag.len() != 1).collect();
        let Ok(id) = subtags.join("-").parse::<LanguageIdentifier>() else {
            return Language::English;
        };
        if id.language.as_str() != "zh" {
            return Language::English;
        }
        let simplified = match id.script.as_ref().map(|script| script.as_str()) {
            Some(script) => script == "Hans",
            None => !matches!(id.region.as_ref().map(|region| region.as_str()), Some("TW" | "HK" | "MO")),
        };
        if simplified { Language::SimplifiedChinese } else { Language::English }
    }
}

/// Something to say, in no language yet: a message id of the `locales/`
/// files and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    /// The Fluent message id.
    pub id: &'static str,
    /// The message's variables, by name.
    pub args: Vec<(&'static str, Arg)>,
}

impl Text {
    /// The message `id` with no arguments yet.
    pub fn new(id: &'static str) -> Self {
        Self { id, args: Vec::new() }
    }

    /// Adds the variable `$name`.
    pub fn with(mut self, name: &'static str, value: impl Into<Arg>) -> Self {
        self.args.push((name, value.into()));
        self
    }

    /// The text in `language`.
    pub fn render(&self, language: Language) -> String {
        MESSAGES.render(language, self)
    }

    /// The text in English: what tests and logs read.
    pub fn english(&self) -> String {
        self.render(Language::English)
    }
}

/// A variable of a [`Text`]. Each kind is formatted for the language before
/// the message sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// Shown as it is: a name, an id, a code.
    Verbatim(String),
    /// A count: shown as an integer, and the messages may pick a plural form by it.
    Count(u64),
    /// A measurement with a fixed number of decimals.
    Decimal {
        /// The value.
        value: f64,
        /// Decimals shown, rounded half to even as Rust's `{:.N}` does.
        places: u8,
    },
    /// Money, with the currency's own minor units and the language's way of
    /// naming the currency.
    Money(Money),
    /// Another text, rendered in the same language.
    Text(Box<Text>),
    /// Items joined in the language's way.
    List(Vec<Arg>, ListStyle),
    /// A yes/no the messages select on (`[yes]`, `*[no]`).
    Flag(bool),
}

impl Arg {
    /// A measurement shown with `places` decimals.
    pub fn decimal(value: f64, places: u8) -> Self {
        Arg::Decimal { value, places }
    }

    /// Texts joined in the language's way.
    pub fn list(items: impl IntoIterator<Item = Text>, style: ListStyle) -> Self {
        Arg::List(items.into_iter().map(Arg::from).collect(), style)
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Arg::Verbatim(value)
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Arg::Verbatim(value.to_owned())
    }
}

impl From<Text> for Arg {
    fn from(value: Text) -> Self {
        Arg::Text(Box::new(value))
    }
}

impl From<Money> for Arg {
    fn from(value: Money) -> Self {
        Arg::Money(value)
    }
}

/// How a list's items are joined: each style is a pair of messages,
/// `list-STYLE-separator` between items and `list-STYLE-last` before the last,
/// so a language can write "A、B或C".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStyle {
    /// All of them ("walk-in, mail-in").
    And,
    /// Any one of them ("walk-in or onsite").
    Or,
    /// Whole clauses ("…; …").
    Clauses,
}

impl ListStyle {
    fn message_ids(self) -> (&'static str, &'static str) {
        match self {
            ListStyle::And => ("list-and-separator", "list-and-last"),
            ListStyle::Or => ("list-or-separator", "list-or-last"),
            ListStyle::Clauses => ("list-clauses-separator", "list-clauses-last"),
        }
    }
}

/// Each language's message file, as shipped.
pub const MESSAGE_FILES: [(Language, &str); 2] = [
    (Language::English, include_str!("../locales/en/repairmatch.ftl")),
    (Language::SimplifiedChinese, include_str!("../locales/zh-Hans/repairmatch.ftl")),
];

/// The parsed message files, one bundle per language, built on first use.
static MESSAGES: LazyLock<Messages> = LazyLock::new(Messages::load);

struct Messages {
    /// In [`Language::ALL`] order.
    bundles: Vec<FluentBundle<FluentResource>>,
    /// Per bundle, its plain messages by id (hashed with Fx: the ids are
    /// ours, not callers').
    plain: Vec<FxHashMap<String, Plain>>,
}

/// A message whose value is only text and `{ $variable }`s, as most are.
///
/// Rendering one through Fluent builds `FluentArgs` and walks the syntax tree
/// each time, and a Find answer renders some 150 texts: a profile put it at
/// an eighth of a cache-off Find. Joining the pieces writes the same string
/// (a test renders every message of every language both ways); messages
/// that select, call functions or reference others stay with Fluent.
#[derive(Debug)]
struct Plain {
    pieces: Vec<Piece>,
    /// About the length of the message written: its own words and a short
    /// value for each variable. A reason's string sized from it is written
    /// without being reallocated three or four times on the way.
    length_hint: usize,
}

#[derive(Debug)]
enum Piece {
    Text(String),
    Variable(String),
}

impl Plain {
    fn of(pattern: &ast::Pattern<&str>) -> Option<Self> {
        let pieces = pattern.elements.iter().map(|element| match element {
            ast::PatternElement::TextElement { value } => Some(Piece::Text((*value).to_owned())),
            ast::PatternElement::Placeable { expression: ast::Expression::Inline(inline) } => match inline {
                ast::InlineExpression::VariableReference { id } => Some(Piece::Variable(id.name.to_owned())),
                ast::InlineExpression::StringLiteral { value } => {
                    Some(Piece::Text(fluent_syntax::unicode::unescape_unicode_to_string(value).into_owned()))
                }
                _ => None,
            },
            ast::PatternElement::Placeable { expression: ast::Expression::Select { .. } } => None,
        });
        let pieces: Vec<Piece> = pieces.collect::<Option<_>>()?;
        const VARIABLE_LENGTH: usize = 16;
        let length_hint = (pieces.iter())
            .map(|piece| match piece {
                Piece::Text(literal) => literal.len(),
                Piece::Variable(_) => VARIABLE_LENGTH,
            })
            .sum();
        Some(Self { pieces, length_hint })
    }
}

impl Messages {
    /// Parses the shipped files. They are part of the build and a test
    /// parses them, so a broken file is a bug, not an input.
    fn load() -> Self {
        let mut plain = Vec::new();
        let bundles = MESSAGE_FILES
            .iter()
            .map(|(language, source)| {
                let resource = FluentResource::try_new((*source).to_owned())
                    .unwrap_or_else(|(_, errors)| panic!("locales/{}: {errors:?}", language.tag()));
                let messages = resource.entries().filter_map(|entry| match entry {
                    ast::Entry::Message(message) => {
                        let plain = Plain::of(message.value.as_ref()?)?;
                        Some((message.id.name.to_owned(), plain))
                    }
                    _ => None,
                });
                plain.push(messages.collect());
                let id: LanguageIdentifier = language.tag().parse().expect("a valid tag");
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // Fluent wraps each variable in Unicode isolation marks for
                // right-to-left scripts; these answers are plain text, read
                // by apps that would show the marks.
                bundle.set_use_isolating(false);
                bundle.add_resource(resource).unwrap_or_else(|errors| panic!("{errors:?}"));
                bundle
            })
            .collect();
        Self { bundles, plain }
    }

    fn bundle(&self, language: Language) -> &FluentBundle<FluentResource> {
        &self.bundles[language as usize]
    }

    /// `text` in `language`; a message the language lacks is said in
    /// English (a test keeps every language complete).
    fn render(&self, language: Language, text: &Text) -> String {
        let Some(plain) = self.plain[language as usize].get(text.id) else {
            return self.render_with_fluent(language, text);
        };
        let mut rendered = String::with_capacity(plain.length_hint);
        self.write_found(language, text, Some(plain), &mut rendered);
        rendered
    }

    /// Appends `text` in `language` to `out`: the texts inside it (lists,
    /// money, nested texts) are written into the same string.
    fn write_text(&self, language: Language, text: &Text, out: &mut String) {
        self.write_found(language, text, self.plain[language as usize].get(text.id), out);
    }

    /// [`Messages::write_text`] once the plain form of `text`'s message, if it
    /// has one, is looked up.
    fn write_found(&self, language: Language, text: &Text, plain: Option<&Plain>, out: &mut String) {
        if let Some(plain) = plain {
            let start = out.len();
            if self.write_plain(language, plain, text, out).is_some() {
                return;
            }
            out.truncate(start);
        }
        out.push_str(&self.render_with_fluent(language, text));
    }

    /// Appends a plain message piece by piece; none when it uses a variable
    /// `text` lacks, which Fluent renders (and reports).
    fn write_plain(&self, language: Language, plain: &Plain, text: &Text, out: &mut String) -> Option<()> {
        for piece in &plain.pieces {
            match piece {
                Piece::Text(literal) => out.push_str(literal),
                Piece::Variable(name) => {
                    // The last value of a name wins, as in FluentArgs.
                    let (_, arg) = text.args.iter().rev().find(|(arg_name, _)| arg_name == name)?;
                    match arg {
                        // The f64 a count becomes (see `value`), as Fluent's
                        // FluentNumber::as_string writes it: below 2^53 that
                        // is exactly the integer's digits.
                        Arg::Count(count) if *count < EXACT_F64_INTEGERS => push_integer(out, *count),
                        Arg::Count(count) => push_display(out, *count as f64),
                        other => self.write_arg(language, other, out),
                    }
                }
            }
        }
        Some(())
    }

    fn render_with_fluent(&self, language: Language, text: &Text) -> String {
        let bundle = self.bundle(language);
        let Some(pattern) = bundle.get_message(text.id).and_then(|message| message.value()) else {
            debug_assert!(false, "no message {} in {}", text.id, language.tag());
            return if language == Language::English { text.id.to_owned() } else { text.english() };
        };
        let mut args = FluentArgs::with_capacity(text.args.len());
        for (name, arg) in &text.args {
            args.set(*name, self.value(language, arg));
        }
        let mut errors = Vec::new();
        let rendered = bundle.format_pattern(pattern, Some(&args), &mut errors);
        debug_assert!(errors.is_empty(), "{} in {}: {errors:?}", text.id, language.tag());
        rendered.into_owned()
    }

    fn value(&self, language: Language, arg: &Arg) -> FluentValue<'static> {
        match arg {
            // Fluent shows a whole f64 without decimals, and selects plurals by it.
            Arg::Count(count) => FluentValue::from(*count as f64),
            other => FluentValue::String(Cow::Owned(self.string(language, other))),
        }
    }

    /// `arg` as text in `language`.
    fn string(&self, language: Language, arg: &Arg) -> String {
        let mut string = String::new();
        self.write_arg(language, arg, &mut string);
        string
    }

    /// Appends `arg` as text in `language`.
    fn write_arg(&self, language: Language, arg: &Arg, out: &mut String) {
        match arg {
            Arg::Verbatim(value) => out.push_str(value),
            Arg::Count(count) => push_integer(out, *count),
            Arg::Decimal { value, places } => push_decimal(out, *value, *places),
            Arg::Money(money) => self.write_money(language, money, out),
            Arg::Text(inner) => self.write_text(language, inner, out),
            Arg::List(items, style) => self.write_list(language, items, *style, out),
            Arg::Flag(flag) => out.push_str(if *flag { "yes" } else { "no" }),
        }
    }

    /// Major units with the currency's ISO 4217 decimals, named as the
    /// language's `money` message names the currency.
    fn write_money(&self, language: Language, money: &Money, out: &mut String) {
        let text =
            Text::new("money").with("amount", money.major_units()).with("currency", money.currency_code.as_str());
        self.write_text(language, &text, out);
    }

    fn write_list(&self, language: Language, items: &[Arg], style: ListStyle, out: &mut String) {
        let (separator, last) = style.message_ids();
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                let id = if index + 1 == items.len() { last } else { separator };
                self.write_text(language, &Text::new(id), out);
            }
            self.write_arg(language, item, out);
        }
    }
}

/// Every integer below this is an f64 exactly.
const EXACT_F64_INTEGERS: u64 = 1 << f64::MANTISSA_DIGITS;

/// Appends an integer's digits without the formatting machinery, which
/// costs a few hundred instructions a number (a dozen numbers an answer).
fn push_integer(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

fn push_display(out: &mut String, value: impl std::fmt::Display) {
    use std::fmt::Write;
    write!(out, "{value}").expect("a String takes every write");
}

/// Appends `value` with `places` decimals, exactly as `{value:.places$}`
/// writes it, without its exact-decimal formatting (about a thousand
/// instructions) for the distances, ratings and hours of every answer.
///
/// The value times 10^places is off from the exact product by at most half
/// an ulp; unless that lands next to a half, both round to the same whole
/// number, and the digits are that number's. Near a half (a tie, which the
/// formatter rounds to even on the exact value), negative values, and what
/// would not fit an f64's integers go to the formatter.
fn push_decimal(out: &mut String, value: f64, places: u8) {
    const SCALES: [f64; 4] = [1.0, 10.0, 100.0, 1_000.0];
    let Some(&scale) = SCALES.get(usize::from(places)) else {
        return push_display(out, format_args!("{value:.*}", usize::from(places)));
    };
    let scaled = value * scale;
    let near_half = (scaled - scaled.floor() - 0.5).abs() <= 1e-9 * scaled.max(1.0);
    if !(value.is_sign_positive() && scaled < 1e15) || near_half {
        return push_display(out, format_args!("{value:.*}", usize::from(places)));
    }
    // Whole, below 1e15: exact in a u64.
    let whole = scaled.round() as u64;
    let per_unit = 10_u64.pow(u32::from(places));
    push_integer(out, whole / per_unit);
    if places > 0 {
        let mut digits = itoa::Buffer::new();
        let fraction = digits.format(whole % per_unit);
        out.push('.');
        out.extend(std::iter::repeat_n('0', usize::from(places) - fraction.len()));
        out.push_str(fraction);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use fluent_syntax::ast;

    use super::*;
    use crate::model::CurrencyCode;

    fn money(code: &str, amount_minor_units: i64) -> Money {
        Money { currency_code: CurrencyCode::parse(code).unwrap(), amount_minor_units }
    }

    #[test]
    fn simplified_chinese_is_chosen_by_its_tags_and_nothing_else() {
        for tag in
            ["zh-Hans", "zh", "zh-CN", "zh-SG", "zh-Hans-CN", "zh-Hans-HK", "ZH-cn", "zh_CN", "zh-CN-u-nu-hanidec"]
        {
            assert_eq!(Language::negotiate(tag), Language::SimplifiedChinese, "{tag}");
        }
        for tag in ["", "en", "en-US", "fr", "zh-TW", "zh-Hant", "zh-Hant-CN", "zh-HK", "zh-MO", "x", "??", "cmn"] {
            assert_eq!(Language::negotiate(tag), Language::English, "{tag}");
        }
        assert_eq!(Language::negotiate(&"zh-".repeat(10_000)), Language::English);
    }

    #[test]
    fn money_reads_as_each_language_writes_it() {
        let render = |language: Language, money: Money| MESSAGES.string(language, &Arg::Money(money));
        assert_eq!(render(Language::English, money("CNY", 34_200)), "342.00 CNY");
        assert_eq!(render(Language::English, money("JPY", 7_897)), "7897 JPY");
        assert_eq!(render(Language::English, money("BHD", 1_234)), "1.234 BHD");
        assert_eq!(render(Language::SimplifiedChinese, money("CNY", 34_200)), "¥342.00");
        assert_eq!(render(Language::SimplifiedChinese, money("USD", 1_999)), "US$19.99");
        assert_eq!(render(Language::SimplifiedChinese, money("EUR", 500)), "€5.00");
        assert_eq!(render(Language::SimplifiedChinese, money("HKD", 12_000)), "HK$120.00");
        assert_eq!(render(Language::SimplifiedChinese, money("JPY", 7_897)), "JP¥7897");
        assert_eq!(render(Language::SimplifiedChinese, money("BHD", 1_234)), "1.234 BHD", "no symbol: the code");
    }

    #[test]
    fn lists_join_in_each_languages_way() {
        let modes = || Arg::list(["mode-walk-in", "mode-onsite", "mode-mail-in"].map(Text::new), ListStyle::Or);
        let join = |language: Language, items: &[Arg], style: ListStyle| {
            MESSAGES.string(language, &Arg::List(items.to_vec(), style))
        };
        assert_eq!(join(Language::English, &[], ListStyle::Or), "");
        let Arg::List(items, style) = modes() else { unreachable!() };
        assert_eq!(join(Language::English, &items, style), "walk-in or onsite or mail-in");
        assert_eq!(join(Language::SimplifiedChinese, &items, style), "到店维修、上门维修或寄修");
        assert_eq!(join(Language::English, &items[..2], ListStyle::And), "walk-in, onsite");
        assert_eq!(join(Language::SimplifiedChinese, &items[..2], ListStyle::And), "到店维修、上门维修");
    }

    #[test]
    fn counts_pick_plural_forms_and_decimals_are_fixed() {
        let cause = |count| {
            Text::new("diagnosis-cause").with("cause", Text::new("cause-closed")).with("count", Arg::Count(count))
        };
        assert!(cause(1).english().ends_with("(1 center)"), "{}", cause(1).english());
        assert!(cause(1000).english().ends_with("(1000 centers)"), "{}", cause(1000).english());
        assert!(cause(2).render(Language::SimplifiedChinese).ends_with("（2 家）"));
        let distance = Text::new("reason-distance").with("distance_km", Arg::decimal(10.4249, 1));
        assert_eq!(distance.english(), "10.4 km away");
        assert_eq!(distance.render(Language::SimplifiedChinese), "距离 10.4 公里");
    }

    #[test]
    fn decimals_read_exactly_as_the_formatter_writes_them() {
        let mut values = vec![
            0.0,
            -0.0,
            0.05,
            0.15,
            0.25,
            0.35,
            0.45,
            1.5,
            2.5,
            10.45,
            10.4249,
            0.999_999_999_9,
            9.95,
            99.95,
            1e14,
            1e16,
            -1.25,
            -0.04,
            123.456_5,
            0.000_5,
            0.001_5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            5e-324,
        ];
        let mut random = fastrand::Rng::with_seed(7);
        for _ in 0..50_000 {
            values.push(random.f64() * 10_f64.powi(random.i32(-3..8)));
            // Ties and their neighbours, k/2000 and one ulp either side.
            let tie = f64::from(random.u32(0..2_000_000)) / 2_000.0;
            values.extend([tie, tie.next_up(), tie.next_down()]);
        }
        for value in values {
            for places in 0..=4 {
                let mut fast = String::new();
                push_decimal(&mut fast, value, places);
                assert_eq!(fast, format!("{value:.*}", usize::from(places)), "{value:e} to {places} places");
            }
        }
    }

    #[test]
    fn plain_messages_read_exactly_as_fluent_writes_them() {
        let samples = || {
            [
                Arg::from("Verifone"),
                Arg::Count(1),
                Arg::Count(1_507),
                // Around the largest integer an f64 holds exactly, and beyond.
                Arg::Count((1 << 53) - 1),
                Arg::Count(1 << 53),
                Arg::Count((1 << 53) + 1),
                Arg::Count(u64::MAX),
                Arg::decimal(10.4249, 1),
                Arg::Money(money("CNY", 34_200)),
                Arg::Money(money("USD", 1_999)),
                Arg::from(Text::new("mode-walk-in")),
                Arg::list(["mode-walk-in", "mode-mail-in"].map(Text::new), ListStyle::And),
                Arg::Flag(true),
            ]
        };
        for language in Language::ALL {
            let plain = &MESSAGES.plain[language as usize];
            assert!(plain.len() > 90, "{}: only {} plain messages", language.tag(), plain.len());
            for (id, message) in plain {
                let id: &'static str = Box::leak(id.clone().into_boxed_str());
                let variables: Vec<&'static str> = (message.pieces.iter())
                    .filter_map(|piece| match piece {
                        Piece::Variable(name) => Some(&*Box::leak(name.clone().into_boxed_str())),
                        Piece::Text(_) => None,
                    })
                    .collect();
                let plain_rendering = |text: &Text| {
                    let mut rendered = String::from("before|");
                    MESSAGES
                        .write_plain(language, message, text, &mut rendered)
                        .map(|()| rendered.replacen("before|", "", 1))
                };
                for sample in samples() {
                    let text = variables.iter().fold(Text::new(id), |text, name| text.with(name, sample.clone()));
                    let rendered = plain_rendering(&text);
                    assert_eq!(rendered, Some(MESSAGES.render_with_fluent(language, &text)), "{id} with {sample:?}");
                }
                if let Some(name) = variables.first() {
                    // A repeated name: the last value wins in both.
                    let text = Text::new(id).with(name, "first").with(name, "second");
                    let text = variables[1..].iter().fold(text, |text, name| text.with(name, "other"));
                    assert_eq!(plain_rendering(&text), Some(MESSAGES.render_with_fluent(language, &text)));
                    // A variable missing: Fluent's path renders it.
                    assert_eq!(plain_rendering(&Text::new(id)), None, "{id}");
                }
            }
        }
    }

    /// Every message id of a file, with the variables it uses (in its value,
    /// its attributes, and the selectors and variants of its selects).
    fn messages_of(source: &str) -> BTreeMap<String, BTreeSet<String>> {
        fn inline(expression: &ast::InlineExpression<&str>, variables: &mut BTreeSet<String>) {
            match expression {
                ast::InlineExpression::VariableReference { id } => {
                    variables.insert(id.name.to_owned());
                }
                ast::InlineExpression::FunctionReference { arguments, .. } => {
                    arguments.positional.iter().for_each(|argument| inline(argument, variables));
                    arguments.named.iter().for_each(|argument| inline(&argument.value, variables));
                }
                ast::InlineExpression::Placeable { expression } => placeable(expression, variables),
                _ => {}
            }
        }
        fn placeable(expression: &ast::Expression<&str>, variables: &mut BTreeSet<String>) {
            match expression {
                ast::Expression::Inline(expression) => inline(expression, variables),
                ast::Expression::Select { selector, variants } => {
                    inline(selector, variables);
                    variants.iter().for_each(|variant| pattern(&variant.value, variables));
                }
            }
        }
        fn pattern(pattern: &ast::Pattern<&str>, variables: &mut BTreeSet<String>) {
            for element in &pattern.elements {
                if let ast::PatternElement::Placeable { expression } = element {
                    placeable(expression, variables);
                }
            }
        }
        let resource = fluent_syntax::parser::parse(source).unwrap_or_else(|(_, errors)| panic!("{errors:?}"));
        let mut messages = BTreeMap::new();
        for entry in &resource.body {
            match entry {
                ast::Entry::Message(message) => {
                    let mut variables = BTreeSet::new();
                    if let Some(value) = &message.value {
                        pattern(value, &mut variables);
                    }
                    for attribute in &message.attributes {
                        pattern(&attribute.value, &mut variables);
                    }
                    let previous = messages.insert(message.id.name.to_owned(), variables);
                    assert!(previous.is_none(), "{} is defined twice", message.id.name);
                }
                ast::Entry::Junk { content } => panic!("cannot parse: {content}"),
                _ => {}
            }
        }
        messages
    }

    #[test]
    fn every_language_has_every_message_with_the_same_variables() {
        let english = messages_of(MESSAGE_FILES[0].1);
        assert!(english.len() > 50, "{} messages", english.len());
        for (language, source) in &MESSAGE_FILES[1..] {
            let translated = messages_of(source);
            let missing: Vec<_> = english.keys().filter(|id| !translated.contains_key(*id)).collect();
            let extra: Vec<_> = translated.keys().filter(|id| !english.contains_key(*id)).collect();
            assert!(missing.is_empty() && extra.is_empty(), "{}: missing {missing:?}, extra {extra:?}", language.tag());
            for (id, variables) in &english {
                assert_eq!(&translated[id], variables, "{}: {id} uses other variables", language.tag());
            }
        }
        // And the bundles load them: no message shadows another.
        for language in Language::ALL {
            for id in english.keys() {
                assert!(MESSAGES.bundle(language).has_message(id), "{id} in {}", language.tag());
            }
        }
    }
}
