//! Personal data detectors with the checks that keep them quiet on ordinary numbers:
//! payment cards must pass Luhn and start like a card, IBANs must pass ISO 7064 mod 97 and
//! have their country's length, SSNs must be in an issuable range, phone numbers must be
//! written like phone numbers (international `+…` or North American `(415) 555-0100`).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

/// A kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    PaymentCard,
    Ssn,
    Iban,
}

impl PiiKind {
    pub const ALL: [PiiKind; 5] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::PaymentCard,
        PiiKind::Ssn,
        PiiKind::Iban,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::PaymentCard => "payment_card",
            PiiKind::Ssn => "ssn",
            PiiKind::Iban => "iban",
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PiiKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PiiKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("unknown personal data kind '{s}' (expected email, phone, payment_card, ssn or iban)")
        })
    }
}

struct Regexes {
    email: Regex,
    phone_intl: Regex,
    phone_nanp: Regex,
    ssn: Regex,
    iban: Regex,
}

fn regexes() -> &'static Regexes {
    static R: OnceLock<Regexes> = OnceLock::new();
    R.get_or_init(|| {
        let b = |src: &str| {
            RegexBuilder::new(src)
                .unicode(false)
                .build()
                .unwrap_or_else(|e| panic!("built-in PII pattern {src:?} is invalid: {e}"))
        };
        Regexes {
            email: b(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}"),
            phone_intl: b(r"\+[1-9][0-9]{0,2}(?:[ .\-]?\(?[0-9]{1,5}\)?){1,5}"),
            phone_nanp: b(r"(?:\([0-9]{3}\)[ .\-]?|[0-9]{3}[.\-])[0-9]{3}[.\-][0-9]{4}"),
            ssn: b(r"[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4}|[0-9]{9}"),
            iban: b(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?"),
        }
    })
}

/// Every enabled kind of personal data in `hay`, in text order, not overlapping.
pub(crate) fn find(hay: &[u8], enabled: &[PiiKind]) -> Vec<(PiiKind, Range<usize>)> {
    let r = regexes();
    let mut found: Vec<(PiiKind, Range<usize>)> = Vec::new();
    let on = |k| enabled.contains(&k);
    // Most specific first: overlaps go to the earlier detector.
    if on(PiiKind::PaymentCard) {
        found.extend(cards(hay).into_iter().map(|r| (PiiKind::PaymentCard, r)));
    }
    if on(PiiKind::Iban) {
        for m in r.iban.find_iter(hay) {
            // The match may have run on into a following upper-case word: drop trailing
            // groups until the checksum holds (or too little is left).
            let mut range = m.range();
            loop {
                if standalone(hay, range.clone()) && iban_valid(&hay[range.clone()]) {
                    found.push((PiiKind::Iban, range));
                    break;
                }
                match hay[range.clone()].iter().rposition(|b| *b == b' ') {
                    Some(sp) if sp >= 15 => range.end = range.start + sp,
                    _ => break,
                }
            }
        }
    }
    if on(PiiKind::Ssn) {
        for m in r.ssn.find_iter(hay) {
            let digits: Vec<u8> = m.as_bytes().iter().copied().filter(u8::is_ascii_digit).collect();
            // `123-45-6789` and `123 45 6789` stand on their own; nine digits in a row only
            // with "SSN" or "social security" before them.
            let bare = !m.as_bytes().contains(&b'-') && !m.as_bytes().contains(&b' ');
            let spaced = m.as_bytes().contains(&b' ');
            let context = ssn_context(hay, m.start());
            let ok = digits.len() == 9
                && ssn_valid(&digits)
                && standalone(hay, m.range())
                && (!bare || context)
                && (!spaced || context || standalone_spaced(hay, m.range()));
            if ok {
                found.push((PiiKind::Ssn, m.range()));
            }
        }
    }
    if on(PiiKind::Email) && memchr_at(hay) {
        for m in r.email.find_iter(hay) {
            if email_valid(hay, m.range()) {
                found.push((PiiKind::Email, m.range()));
            }
        }
    }
    if on(PiiKind::Phone) {
        for re in [&r.phone_intl, &r.phone_nanp] {
            for m in re.find_iter(hay) {
                let range = trim_phone(hay, m.range());
                let digits = hay[range.clone()].iter().filter(|b| b.is_ascii_digit()).count();
                if (7..=15).contains(&digits) && standalone(hay, range.clone()) {
                    found.push((PiiKind::Phone, range));
                }
            }
        }
    }
    let mut accepted: Vec<(PiiKind, Range<usize>)> = Vec::with_capacity(found.len());
    for (k, r) in found {
        if !accepted.iter().any(|(_, a)| a.start < r.end && r.start < a.end) {
            accepted.push((k, r));
        }
    }
    accepted.sort_by_key(|(_, r)| r.start);
    accepted
}

fn memchr_at(hay: &[u8]) -> bool {
    hay.contains(&b'@')
}

/// Not glued to other letters, digits or number punctuation on either side.
fn standalone(hay: &[u8], r: Range<usize>) -> bool {
    let before_ok = r.start == 0 || {
        let b = hay[r.start - 1];
        !(b.is_ascii_alphanumeric()
            || b == b'_'
            || b == b'+'
            || ((b == b'.' || b == b'-' || b == b'/') && r.start >= 2 && hay[r.start - 2].is_ascii_digit()))
    };
    let after_ok = r.end >= hay.len() || {
        let b = hay[r.end];
        !(b.is_ascii_alphanumeric()
            || b == b'_'
            || ((b == b'.' || b == b'-' || b == b'/') && hay.get(r.end + 1).is_some_and(u8::is_ascii_digit)))
    };
    before_ok && after_ok
}

/// An international match may swallow a trailing separator or an unbalanced `(`.
fn trim_phone(hay: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.end > r.start && !hay[r.end - 1].is_ascii_digit() && hay[r.end - 1] != b')' {
        r.end -= 1;
    }
    r
}

fn email_valid(hay: &[u8], r: Range<usize>) -> bool {
    let s = &hay[r.clone()];
    let Some(at) = s.iter().position(|b| *b == b'@') else {
        return false;
    };
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if local.first() == Some(&b'.') || local.last() == Some(&b'.') || local == b"git" {
        return false;
    }
    // Addresses that belong to no person: no-reply senders and bounce handlers.
    let lower: Vec<u8> = s.to_ascii_lowercase();
    let has = |n: &[u8]| lower.windows(n.len()).any(|w| w == n);
    if has(b"noreply") || has(b"no-reply") || has(b"donotreply") || has(b"do-not-reply") || has(b"mailer-daemon") {
        return false;
    }
    if domain
        .split(|b| *b == b'.')
        .any(|l| l.is_empty() || l.first() == Some(&b'-') || l.last() == Some(&b'-'))
    {
        return false;
    }
    let tld = domain
        .rsplit(|b| *b == b'.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    // `icon@2x.png`, `logo@3x.webp`: asset names, not addresses.
    const FILE_EXTENSIONS: &[&[u8]] = &[
        b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"ico", b"css", b"js", b"ts", b"map", b"json", b"txt", b"md",
        b"py", b"rs", b"go", b"html", b"tsx", b"jsx",
    ];
    if FILE_EXTENSIONS.contains(&tld.as_slice()) {
        return false;
    }
    r.end >= hay.len() || !(hay[r.end].is_ascii_alphanumeric() || hay[r.end] == b'_')
}

/// Nine digits, as issued: area not 000, 666 or 9xx, group not 00, serial not 0000.
fn ssn_valid(d: &[u8]) -> bool {
    let num = |b: &[u8]| b.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    let (area, group, serial) = (num(&d[0..3]), num(&d[3..5]), num(&d[5..9]));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// "SSN", "social security (number)", "SS#" within 40 bytes before.
fn ssn_context(hay: &[u8], start: usize) -> bool {
    let before = hay[start.saturating_sub(40)..start].to_ascii_lowercase();
    let has = |n: &[u8]| before.windows(n.len()).any(|w| w == n);
    has(b"ssn") || has(b"social security") || has(b"ss#") || has(b"soc. sec") || has(b"social sec")
}

/// A spaced SSN is not part of a longer run of spaced digit groups (a phone or account number).
fn standalone_spaced(hay: &[u8], r: Range<usize>) -> bool {
    let digit_group_before = r.start >= 2 && hay[r.start - 1] == b' ' && hay[r.start - 2].is_ascii_digit();
    let digit_group_after = hay.get(r.end) == Some(&b' ') && hay.get(r.end + 1).is_some_and(u8::is_ascii_digit);
    !digit_group_before && !digit_group_after
}

/// Card numbers: runs of digit groups separated by single spaces or hyphens. Each candidate
/// (one group alone, or several consecutive groups with the same separator) must have 13 to
/// 19 digits, start like a card, and pass Luhn.
fn cards(hay: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < hay.len() {
        if !hay[i].is_ascii_digit() || (i > 0 && (hay[i - 1].is_ascii_alphanumeric() || hay[i - 1] == b'_')) {
            i += 1;
            continue;
        }
        // Collect the groups of one run: (start, end, separator before it).
        let mut groups: Vec<(usize, usize, u8)> = Vec::new();
        let mut j = i;
        let mut sep = 0u8;
        loop {
            let start = j;
            while j < hay.len() && hay[j].is_ascii_digit() {
                j += 1;
            }
            groups.push((start, j, sep));
            if groups.len() > 64 {
                break;
            }
            match (hay.get(j), hay.get(j + 1)) {
                (Some(&s @ (b' ' | b'-')), Some(d)) if d.is_ascii_digit() => {
                    sep = s;
                    j += 1;
                }
                _ => break,
            }
        }
        let run_end = groups.last().map(|g| g.1).unwrap_or(j);
        let glued_after = hay
            .get(run_end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        let mut g = 0;
        while g < groups.len() {
            let mut best: Option<usize> = None;
            let mut digits = 0;
            for h in g..groups.len() {
                if h > g && (groups[h].2 != groups[g + 1].2 || groups[h].1 - groups[h].0 > 6) {
                    break;
                }
                if h > g && groups[g].1 - groups[g].0 > 6 {
                    break;
                }
                digits += groups[h].1 - groups[h].0;
                if digits > 19 {
                    break;
                }
                let last_of_run = h + 1 == groups.len();
                if (13..=19).contains(&digits)
                    && !(last_of_run && glued_after)
                    && card_valid(hay, groups[g].0, groups[h].1)
                {
                    best = Some(h);
                }
            }
            match best {
                Some(h) => {
                    out.push(groups[g].0..groups[h].1);
                    g = h + 1;
                }
                None => g += 1,
            }
        }
        i = run_end.max(i + 1);
    }
    out
}

fn card_valid(hay: &[u8], start: usize, end: usize) -> bool {
    let digits: Vec<u8> = hay[start..end]
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect();
    starts_like_card(&digits) && luhn(&digits) && !device_id_context(hay, start)
}

/// "IMEI", "serial", "ICCID" just before: a device identifier (also Luhn-checked), not a card.
fn device_id_context(hay: &[u8], start: usize) -> bool {
    let before = hay[start.saturating_sub(24)..start].to_ascii_lowercase();
    let has = |n: &[u8]| before.windows(n.len()).any(|w| w == n);
    has(b"imei") || has(b"iccid") || has(b"meid") || has(b"serial")
}

/// Issuer prefixes and lengths: Visa 4 (13, 16, 19), Mastercard 51–55 and 2221–2720 (16),
/// Amex 34/37 (15), Diners 30/36/38/39, JCB 35, Discover, UnionPay and Maestro 6, Maestro
/// 50/56–58 (14 to 19).
fn starts_like_card(d: &[u8]) -> bool {
    let prefix = |n: usize| d.iter().take(n).fold(0u32, |acc, x| acc * 10 + u32::from(*x));
    let len = d.len();
    match d.first() {
        Some(4) => matches!(len, 13 | 16 | 19),
        Some(5) if (51..=55).contains(&prefix(2)) => len == 16,
        // Maestro.
        Some(5) => matches!(prefix(4), 5018 | 5020 | 5038 | 5893) && (13..=19).contains(&len),
        // Mastercard 2-series, Mir.
        Some(2) => ((2221..=2720).contains(&prefix(4)) || (2200..=2204).contains(&prefix(4))) && len == 16,
        Some(3) if matches!(prefix(2), 34 | 37) => len == 15,
        // JCB.
        Some(3) if (3528..=3589).contains(&prefix(4)) => (16..=19).contains(&len),
        // Diners Club.
        Some(3) if (300..=305).contains(&prefix(3)) || matches!(prefix(2), 36 | 38 | 39) => (14..=19).contains(&len),
        // Discover, UnionPay, Maestro 6-series, RuPay.
        Some(6) => {
            (prefix(4) == 6011
                || (644..=649).contains(&prefix(3))
                || prefix(2) == 65
                || prefix(2) == 62
                || matches!(prefix(4), 6304 | 6759 | 6761..=6763)
                || prefix(2) == 60)
                && (16..=19).contains(&len)
        }
        _ => false,
    }
}

pub(crate) fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    !d.is_empty() && sum.is_multiple_of(10)
}

/// ISO 13616: country length, then mod 97 of the rearranged number equals 1.
pub(crate) fn iban_valid(s: &[u8]) -> bool {
    let compact: Vec<u8> = s.iter().copied().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    if let Some(len) = iban_length(&compact[..2])
        && len != compact.len()
    {
        return false;
    }
    let mut rem: u32 = 0;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// IBAN lengths of the registry's countries (SWIFT IBAN registry).
fn iban_length(cc: &[u8]) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
    ];
    TABLE.iter().find(|(c, _)| c.as_slice() == cc).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(PiiKind, String)> {
        find(text.as_bytes(), &PiiKind::ALL)
            .into_iter()
            .map(|(k, r)| (k, text[r].to_string()))
            .collect()
    }

    #[test]
    fn luhn_decides_cards() {
        assert_eq!(
            found("card 4111 1111 1111 1111 ok"),
            vec![(PiiKind::PaymentCard, "4111 1111 1111 1111".into())]
        );
        assert_eq!(
            found("card 4111-1111-1111-1111"),
            vec![(PiiKind::PaymentCard, "4111-1111-1111-1111".into())]
        );
        assert_eq!(
            found("amex 378282246310005."),
            vec![(PiiKind::PaymentCard, "378282246310005".into())]
        );
        assert_eq!(
            found("mc 5555555555554444"),
            vec![(PiiKind::PaymentCard, "5555555555554444".into())]
        );
        // A 16-digit order number that fails Luhn is not a card.
        assert_eq!(found("order 4111111111111112 shipped"), vec![]);
        assert_eq!(found("order number 1234567812345678"), vec![]);
        // Luhn-valid but no issuer starts with 1 or 9.
        assert_eq!(found("id 1000000000000008"), vec![]);
    }

    #[test]
    fn two_cards_in_a_row_are_both_found() {
        let k = found("4111111111111111 4012888888881881");
        assert_eq!(
            k,
            vec![
                (PiiKind::PaymentCard, "4111111111111111".into()),
                (PiiKind::PaymentCard, "4012888888881881".into())
            ]
        );
    }

    #[test]
    fn numbers_inside_longer_tokens_are_not_cards() {
        assert_eq!(found("ts 41111111111111110"), vec![]);
        assert_eq!(found("hash a4111111111111111"), vec![]);
        assert_eq!(found("4111111111111111abc"), vec![]);
    }

    #[test]
    fn ibans_need_their_checksum() {
        assert_eq!(
            found("pay GB82 WEST 1234 5698 7654 32 now"),
            vec![(PiiKind::Iban, "GB82 WEST 1234 5698 7654 32".into())]
        );
        assert_eq!(
            found("DE89370400440532013000"),
            vec![(PiiKind::Iban, "DE89370400440532013000".into())]
        );
        assert_eq!(found("GB82WEST12345698765433"), vec![]);
        assert_eq!(
            found("IBAN BE68 5390 0754 7034 CODE X"),
            vec![(PiiKind::Iban, "BE68 5390 0754 7034".into())]
        );
        // Right checksum arithmetic is not enough with the wrong length for the country.
        assert!(!iban_valid(b"DE8937040044053201300"));
    }

    #[test]
    fn ssn_ranges() {
        assert_eq!(found("ssn 078-05-1120"), vec![(PiiKind::Ssn, "078-05-1120".into())]);
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert_eq!(found(bad), vec![], "{bad}");
        }
        assert_eq!(found("v1.078-05-1120"), vec![]);
    }

    #[test]
    fn emails() {
        assert_eq!(
            found("mail alice.smith+x@example.co.uk."),
            vec![(PiiKind::Email, "alice.smith+x@example.co.uk".into())]
        );
        assert_eq!(found("icon@2x.png and git@github.com:org/repo"), vec![]);
    }

    #[test]
    fn phones() {
        assert_eq!(
            found("call +1 415 555 2671 today"),
            vec![(PiiKind::Phone, "+1 415 555 2671".into())]
        );
        assert_eq!(
            found("call (415) 555-2671"),
            vec![(PiiKind::Phone, "(415) 555-2671".into())]
        );
        assert_eq!(
            found("call 415.555.2671."),
            vec![(PiiKind::Phone, "415.555.2671".into())]
        );
        assert_eq!(
            found("tel +442079460958"),
            vec![(PiiKind::Phone, "+442079460958".into())]
        );
        for ok in [
            "on 2024-01-15 at 10:30",
            "version 1.2.3",
            "ip 192.168.100.200",
            "port 8080",
            "12345",
            "uuid 123e4567-e89b-12d3",
        ] {
            assert_eq!(found(ok), vec![], "{ok}");
        }
    }

    #[test]
    fn kinds_parse() {
        assert_eq!("payment_card".parse::<PiiKind>().unwrap(), PiiKind::PaymentCard);
        assert!("card".parse::<PiiKind>().is_err());
    }
}
