//! AWS's documented formats for the values a spec hands to AWS, each with the reference it comes
//! from: checked before any call, since the emulators take values AWS refuses (moto stores any
//! schedule string, for one). Schema patterns in `crd.rs` say the same where a regex can. Pure.

/// Application Auto Scaling `PutScheduledAction` `Schedule`: `at(yyyy-mm-ddThh:mm:ss)`,
/// `rate(value unit)` (a positive integer; minute(s), hour(s) or day(s)), or `cron(fields)` with the
/// six fields Minutes Hours Day-of-month Month Day-of-week Year (Application Auto Scaling API
/// reference, PutScheduledAction; the cron syntax is EventBridge's "Cron expressions reference").
///
/// # Errors
/// What is wrong, in the reference's terms.
pub fn schedule(expression: &str) -> Result<(), String> {
    let inner = |prefix: &str| expression.strip_prefix(prefix).and_then(|s| s.strip_suffix(')'));
    if let Some(at) = inner("at(") {
        return at_time(at);
    }
    if let Some(rate) = inner("rate(") {
        return rate_expression(rate);
    }
    if let Some(cron) = inner("cron(") {
        return cron_expression(cron);
    }
    Err("is not at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(minutes hours day-of-month month day-of-week year)"
        .into())
}

fn at_time(at: &str) -> Result<(), String> {
    let b = at.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shaped = b.len() == 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let number = |range: std::ops::Range<usize>| at[range].parse::<u32>().unwrap_or(u32::MAX);
    if !shaped {
        return Err(format!("at({at}) is not at(yyyy-mm-ddThh:mm:ss)"));
    }
    let fields = [(number(5..7), 1..=12, "month"), (number(8..10), 1..=31, "day"), (number(11..13), 0..=23, "hour")];
    let clock = [(number(14..16), 0..=59, "minute"), (number(17..19), 0..=59, "second")];
    match fields.into_iter().chain(clock).find(|(value, range, _)| !range.contains(value)) {
        Some((value, _, what)) => Err(format!("at({at}): {value} is not a {what}")),
        None => Ok(()),
    }
}

fn rate_expression(rate: &str) -> Result<(), String> {
    let Some((value, unit)) = rate.split_once(' ') else {
        return Err(format!("rate({rate}) is not rate(value unit)"));
    };
    let positive = !value.starts_with('0') && value.parse::<u32>().is_ok_and(|v| v > 0);
    if !positive {
        return Err(format!("rate({rate}): the value must be a positive integer"));
    }
    if !["minute", "minutes", "hour", "hours", "day", "days"].contains(&unit) {
        return Err(format!("rate({rate}): the unit must be minute(s), hour(s) or day(s)"));
    }
    Ok(())
}

/// One cron field: its name, its bounds, its names (months, weekdays) and its special characters.
struct CronField {
    name: &'static str,
    range: std::ops::RangeInclusive<u32>,
    names: &'static [&'static str],
    special: &'static str,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const CRON_FIELDS: [CronField; 6] = [
    CronField { name: "minutes", range: 0..=59, names: &[], special: "" },
    CronField { name: "hours", range: 0..=23, names: &[], special: "" },
    CronField { name: "day-of-month", range: 1..=31, names: &[], special: "?LW" },
    CronField { name: "month", range: 1..=12, names: &MONTHS, special: "" },
    CronField { name: "day-of-week", range: 1..=7, names: &WEEKDAYS, special: "?L#" },
    CronField { name: "year", range: 1970..=2199, names: &[], special: "" },
];

fn cron_expression(cron: &str) -> Result<(), String> {
    let fields: Vec<&str> = cron.split(' ').collect();
    if fields.len() != 6 || fields.iter().any(|f| f.is_empty()) {
        return Err(format!(
            "cron({cron}) must be six fields, one space apart: minutes hours day-of-month month day-of-week year"
        ));
    }
    for (value, field) in fields.iter().zip(&CRON_FIELDS) {
        cron_field(value, field).map_err(|why| format!("cron({cron}): {} {value:?} {why}", field.name))?;
    }
    // "You can't specify the Day-of-month and Day-of-week fields in the same cron expression."
    if (fields[2] == "?") == (fields[4] == "?") {
        return Err(format!("cron({cron}): exactly one of day-of-month and day-of-week must be ?"));
    }
    Ok(())
}

fn cron_field(value: &str, field: &CronField) -> Result<(), &'static str> {
    if value == "*" || (value == "?" && field.special.contains('?')) {
        return Ok(());
    }
    for part in value.split(',') {
        let (range, step) = part.split_once('/').map_or((part, None), |(r, s)| (r, Some(s)));
        if let Some(step) = step
            && !step.parse::<u32>().is_ok_and(|s| s > 0 && s <= *field.range.end())
        {
            return Err("has a step that is not a positive number within the field");
        }
        if range == "*" && step.is_some() {
            continue;
        }
        let (from, to) = range.split_once('-').map_or((range, None), |(a, b)| (a, Some(b)));
        for bound in std::iter::once(from).chain(to) {
            cron_value(bound, field)?;
        }
    }
    Ok(())
}

fn cron_value(value: &str, field: &CronField) -> Result<(), &'static str> {
    let special = |c: char| field.special.contains(c);
    let number = |text: &str| text.parse::<u32>().ok().filter(|n| field.range.contains(n));
    let known = |text: &str| number(text).is_some() || field.names.contains(&text.to_ascii_uppercase().as_str());
    let ok = match value {
        "L" => special('L'),
        v if special('W') && v.ends_with('W') => number(&v[..v.len() - 1]).is_some(),
        v if special('L') && v.len() > 1 && v.ends_with('L') => known(&v[..v.len() - 1]),
        v if special('#') && v.contains('#') => v
            .split_once('#')
            .is_some_and(|(day, nth)| known(day) && nth.parse::<u32>().is_ok_and(|n| (1..=5).contains(&n))),
        v => known(v),
    };
    if ok { Ok(()) } else { Err("is outside the field's values") }
}

/// Application Auto Scaling `Timezone`: a canonical IANA time zone name such as `Etc/GMT+9` or
/// `Pacific/Tahiti` (PutScheduledAction). The shape is checked here; whether the name is in the
/// IANA database is AWS's to say.
///
/// # Errors
/// When it is not shaped like one.
pub fn time_zone(zone: &str) -> Result<(), String> {
    let part = |p: &str| {
        p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && p.chars().all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
    };
    let parts: Vec<&str> = zone.split('/').collect();
    if zone.len() <= 64 && parts.len() <= 3 && parts.iter().all(|p| part(p)) {
        Ok(())
    } else {
        Err("is not an IANA time zone name such as Europe/Berlin, Etc/GMT+9 or UTC".into())
    }
}

/// S3 general purpose bucket names ("Bucket naming rules"): 3 to 63 lowercase letters, digits,
/// dots and hyphens, starting and ending with a letter or digit, no two dots together, not an IP
/// address, and none of the prefixes and suffixes S3 reserves.
///
/// # Errors
/// The rule it breaks.
pub fn s3_bucket(name: &str) -> Result<(), String> {
    let chars_ok = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&name.len())
        || !chars_ok
        || !ends_ok(name.as_bytes().first())
        || !ends_ok(name.as_bytes().last())
    {
        return Err(
            "must be 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
                .into(),
        );
    }
    if name.contains("..") {
        return Err("may not hold two dots together".into());
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("may not be formatted as an IP address".into());
    }
    let reserved_prefix = ["xn--", "sthree-", "amzn-s3-demo-"].into_iter().find(|p| name.starts_with(p));
    let reserved_suffix =
        ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].into_iter().find(|s| name.ends_with(s));
    match reserved_prefix.or(reserved_suffix) {
        Some(reserved) => Err(format!("may not use {reserved:?}, which S3 reserves")),
        None => Ok(()),
    }
}

/// S3 object keys are at most 1,024 bytes of UTF-8 ("Naming Amazon S3 objects"); Lambda's
/// `S3Key` takes 1 to 1,024 characters. The schema counts characters, so bytes are counted here.
///
/// # Errors
/// When it is empty or too long in bytes.
pub fn s3_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 1024 {
        return Err(format!("is {} bytes of UTF-8; S3 keys are 1 to 1024 bytes", key.len()));
    }
    Ok(())
}

/// ACM certificate ARNs: `arn:<partition>:acm:<region>:<12-digit account>:certificate/<UUID>`
/// (ACM API reference, CertificateArn; ARN formats in "Identifiers for ACM").
///
/// # Errors
/// The part that is wrong.
pub fn acm_certificate_arn(arn: &str) -> Result<crate::aws::Arn<'_>, String> {
    let parsed = crate::aws::Arn::parse(arn).ok_or("is not an ARN")?;
    if parsed.service != "acm" {
        return Err("is not an ACM ARN".into());
    }
    if !is_account_id(parsed.account) {
        return Err("has no 12-digit account".into());
    }
    let id = parsed.resource.strip_prefix("certificate/").ok_or("is not a certificate")?;
    if !is_uuid(id) {
        return Err("does not end in a certificate id (a UUID such as 0a1b2c3d-1234-4abc-8def-0123456789ab)".into());
    }
    Ok(parsed)
}

/// A 12-digit AWS account id.
#[must_use]
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// EC2 resource ids (`vpc-`, `subnet-`): the prefix and 8 or 17 lowercase hex digits ("Resource
/// IDs" in the EC2 user guide: longer ids have 17).
#[must_use]
pub fn is_ec2_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// DynamoDB `TableName`: 3 to 255 of `[a-zA-Z0-9_.-]` (DynamoDB naming rules).
///
/// # Errors
/// When it is not one.
pub fn table_name(name: &str) -> Result<(), String> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"_.-".contains(&b);
    if !(3..=255).contains(&name.len()) || !name.bytes().all(ok) {
        return Err("must be 3 to 255 letters, digits, '_', '.' or '-' (DynamoDB naming rules)".into());
    }
    Ok(())
}

/// A key of a Kubernetes Secret's data: `[-._a-zA-Z0-9]+`, at most 253 characters.
///
/// # Errors
/// When it is not one.
pub fn secret_key(key: &str) -> Result<(), String> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"-._".contains(&b);
    if key.is_empty() || key.len() > 253 || !key.bytes().all(ok) {
        return Err("must be 1 to 253 letters, digits, '-', '.' or '_' (a Secret's data key)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_application_auto_scaling() {
        for good in [
            "at(2026-12-24T18:00:00)",
            "rate(1 day)",
            "rate(15 minutes)",
            "cron(0 8 ? * MON-FRI *)",
            "cron(0/15 * * * ? *)",
            "cron(0 18 L * ? 2026-2030)",
            "cron(30 9 ? * 6#3 *)",
            "cron(0 12 15W * ? *)",
            "cron(0 0 ? JAN,jul 2L *)",
        ] {
            assert_eq!(schedule(good), Ok(()), "{good}");
        }
        let bad = [
            ("cron(0 8 * * MON-FRI)", "six fields"),
            ("cron(0 8 * * * *)", "exactly one of day-of-month and day-of-week"),
            ("cron(0 8 ? * ? *)", "exactly one of"),
            ("cron(60 8 ? * MON *)", "minutes \"60\""),
            ("cron(0 24 ? * MON *)", "hours"),
            ("cron(0 8 ? * MON 1969)", "year"),
            ("cron(0 8 ? FOO * *)", "month"),
            ("cron(0 8 ?  * MON *)", "six fields"),
            ("rate(0 minutes)", "positive integer"),
            ("rate(5 weeks)", "the unit"),
            ("rate(-1 day)", "positive integer"),
            ("at(2026-13-01T00:00:00)", "not a month"),
            ("at(2026-12-01 00:00:00)", "not at(yyyy"),
            ("at(2026-12-01T00:00)", "not at(yyyy"),
            ("every day", "is not at("),
            ("cron(0 8 ? * MON *", "is not at("),
        ];
        for (expression, why) in bad {
            let said = schedule(expression).expect_err(expression);
            assert!(said.contains(why), "{expression}: {said}");
        }
    }

    #[test]
    fn time_zones_are_shaped_as_iana_names() {
        for good in ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+9", "Etc/GMT-14"] {
            assert_eq!(time_zone(good), Ok(()), "{good}");
        }
        for bad in ["", "Europe/", "+01:00", "Europe Berlin", "a/b/c/d", "Europe/Berlin;rm"] {
            assert!(time_zone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_names_follow_s3s_naming_rules() {
        for good in ["blogs-lambda-code", "my.bucket.1", "abc"] {
            assert_eq!(s3_bucket(good), Ok(()), "{good}");
        }
        let bad = [
            ("My-Bucket", "lowercase"),
            ("-code", "starting and ending"),
            ("code.", "starting and ending"),
            ("a..b", "two dots"),
            ("192.168.5.4", "IP address"),
            ("xn--code", "reserves"),
            ("code-s3alias", "reserves"),
            ("ab", "3 to 63"),
            ("code_bucket", "lowercase"),
        ];
        for (name, why) in bad {
            assert!(s3_bucket(name).expect_err(name).contains(why), "{name}");
        }
        assert!(s3_key(&"é".repeat(600)).is_err(), "600 characters are 1200 bytes");
        assert_eq!(s3_key("team-a/app.zip"), Ok(()));
    }

    #[test]
    fn certificate_arns_name_an_acm_certificate_by_its_uuid() {
        let good = "arn:aws:acm:us-west-1:123456789012:certificate/0a1b2c3d-1234-4abc-8def-0123456789ab";
        assert_eq!(acm_certificate_arn(good).map(|a| a.region), Ok("us-west-1"));
        let bad = [
            ("arn:aws:acm:us-west-1:123456789012:certificate/wild", "UUID"),
            ("arn:aws:acm:us-west-1:1:certificate/0a1b2c3d-1234-4abc-8def-0123456789ab", "12-digit"),
            ("arn:aws:iam::123456789012:server-certificate/x", "not an ACM ARN"),
            ("certificate/0a1b", "not an ARN"),
        ];
        for (arn, why) in bad {
            assert!(acm_certificate_arn(arn).expect_err(arn).contains(why), "{arn}");
        }
    }

    #[test]
    fn ec2_ids_have_8_or_17_hex_digits_and_secret_keys_are_data_keys() {
        assert!(is_ec2_id("vpc-0a1b2c3d", "vpc-") && is_ec2_id("subnet-0123456789abcdef0", "subnet-"));
        for bad in ["vpc-0a1b2c3", "vpc-0A1B2C3D", "vpc-0123456789abcdef", "subnet-0a1b2c3d"] {
            assert!(!is_ec2_id(bad, "vpc-"), "{bad}");
        }
        assert_eq!(secret_key("token"), Ok(()));
        assert!(table_name("blogs/team-a").is_err() && table_name("ab").is_err() && table_name("blog-a_1.x").is_ok());
        assert!(secret_key("the token").is_err() && secret_key("").is_err() && secret_key("a/b").is_err());
    }
}
