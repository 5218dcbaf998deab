//! Masks for display: they cut at character boundaries, never inside one, and show no
//! more than each rule says.

/// `j***@example.com`: the first character of the local part and the domain. Text without
/// an `@` is masked whole (`***`).
///
/// # Examples
/// ```
/// assert_eq!(shopsafe::minimize::mask::email(" Jane.Doe@Example.com "), "J***@example.com");
/// assert_eq!(shopsafe::minimize::mask::email("not an address"), "***");
/// ```
#[must_use]
pub fn email(s: &str) -> String {
    let s = s.trim();
    match s.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{}", domain.to_lowercase())
        }
        _ => "***".to_owned(),
    }
}

/// `***32`: the last `keep` digits (2 or 4 make sense), nothing else; fewer than
/// `keep + 4` digits show none.
///
/// # Examples
/// ```
/// assert_eq!(shopsafe::minimize::mask::phone("+1 (415) 555-0132", 4), "***0132");
/// assert_eq!(shopsafe::minimize::mask::phone("112", 2), "***");
/// ```
#[must_use]
pub fn phone(s: &str, keep: usize) -> String {
    format!("***{}", last_digits(s, keep, keep + 4))
}

/// The last `keep` ASCII digits of `s`, or nothing when it has fewer than `min`.
fn last_digits(s: &str, keep: usize, min: usize) -> String {
    let digits: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < min {
        String::new()
    } else {
        digits[digits.len() - keep..].iter().collect()
    }
}

/// `J. Q. D.`: initials.
///
/// # Examples
/// ```
/// assert_eq!(shopsafe::minimize::mask::name("Émile  zola"), "É. Z.");
/// ```
#[must_use]
pub fn name(s: &str) -> String {
    let initials: Vec<String> = s
        .split_whitespace()
        .filter_map(|w| w.chars().find(|c| c.is_alphanumeric()))
        .map(|c| format!("{}.", c.to_uppercase()))
        .collect();
    if initials.is_empty() {
        "***".to_owned()
    } else {
        initials.join(" ")
    }
}

/// `***, Springfield, 12345, US`: the first line (street and number) hidden, the rest
/// (city, postcode, country) kept. Lines are separated by new lines or commas.
///
/// # Examples
/// ```
/// assert_eq!(shopsafe::minimize::mask::address("12 Main St, Springfield 12345"), "***, Springfield 12345");
/// ```
#[must_use]
pub fn address(s: &str) -> String {
    let parts: Vec<&str> = s
        .split(['\n', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    match parts.split_first() {
        Some((_, rest)) if !rest.is_empty() => format!("***, {}", rest.join(", ")),
        _ => "***".to_owned(),
    }
}

/// `••••1234`: the last four digits of a card number; fewer than 12 digits show none.
///
/// # Examples
/// ```
/// assert_eq!(shopsafe::minimize::mask::pan("4111 1111 1111 1111"), "••••1111");
/// ```
#[must_use]
pub fn pan(s: &str) -> String {
    format!("••••{}", last_digits(s, 4, 12))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn chars_of(s: &str) -> std::collections::HashSet<char> {
        s.chars().collect()
    }

    proptest! {
        #[test]
        fn masks_never_panic_and_show_only_what_they_may(s in any::<String>()) {
            let e = email(&s);
            let allowed: std::collections::HashSet<char> = chars_of(&s.to_lowercase()).union(&chars_of(&s)).copied().chain("*@".chars()).collect();
            prop_assert!(e.chars().all(|c| allowed.contains(&c)), "{}", e);
            let p = phone(&s, 4);
            prop_assert!(p.chars().filter(char::is_ascii_digit).count() <= 4);
            let n = name(&s);
            prop_assert!(n.chars().filter(|c| c.is_alphanumeric()).count() <= s.split_whitespace().count().max(1) * 3);
            let _ = address(&s);
            let m = pan(&s);
            prop_assert!(m.chars().filter(char::is_ascii_digit).count() <= 4);
        }

        #[test]
        fn email_mask_keeps_one_character_of_the_local_part(local in "[^@\\s]{1,20}", domain in "[a-z]{1,10}\\.[a-z]{2,3}") {
            let m = email(&format!("{local}@{domain}"));
            let first: String = local.chars().take(1).collect();
            prop_assert_eq!(m, format!("{first}***@{domain}"));
        }
    }
}
