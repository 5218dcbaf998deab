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
/// `keep + 4` digits show none, so a huge `keep` shows nothing (and never panics).
///
/// # Examples
/// ```
/// assert_eq!(shopsafe::minimize::mask::phone("+1 (415) 555-0132", 4), "***0132");
/// assert_eq!(shopsafe::minimize::mask::phone("112", 2), "***");
/// ```
#[must_use]
pub fn phone(s: &str, keep: usize) -> String {
    format!("***{}", last_digits(s, keep, keep.saturating_add(4)))
}

/// The last `keep` ASCII digits of `s`, or nothing when it has fewer than `min` (or
/// fewer than `keep`).
fn last_digits(s: &str, keep: usize, min: usize) -> String {
    let digits: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < min.max(keep) {
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

    #[test]
    fn phone_with_a_huge_keep_shows_nothing_and_does_not_panic() {
        for keep in [usize::MAX, usize::MAX - 3, usize::MAX / 2, 40] {
            assert_eq!(phone("+1 (415) 555-0132", keep), "***", "keep {keep}");
        }
        assert_eq!(phone("+1 (415) 555-0132", 2), "***32");
    }

    proptest! {
        #[test]
        fn masks_never_panic_and_show_only_what_they_may(s in any::<String>(), keep in any::<usize>()) {
            let e = email(&s);
            // Either the whole mask, or one character, `***@` and the lower-cased domain.
            if e != "***" {
                let (local, domain) = s.trim().rsplit_once('@').expect("an @ was there");
                let first: String = local.chars().take(1).collect();
                prop_assert_eq!(&e, &format!("{first}***@{}", domain.to_lowercase()));
            }
            let p = phone(&s, 4);
            prop_assert!(p.chars().filter(char::is_ascii_digit).count() <= 4);
            let _ = phone(&s, keep);
            let n = name(&s);
            prop_assert!(n.chars().filter(|c| c.is_alphanumeric()).count() <= s.split_whitespace().count().max(1) * 3);
            let a = address(&s);
            prop_assert!(a.starts_with("***"), "{}", a);
            let m = pan(&s);
            prop_assert!(m.chars().filter(char::is_ascii_digit).count() <= 4);
        }

        #[test]
        fn email_mask_keeps_one_character_of_the_local_part(local in "[a-z0-9._]{2,20}", domain in "[a-z]{1,10}\\.[a-z]{2,3}") {
            let m = email(&format!("{local}@{domain}"));
            let first: String = local.chars().take(1).collect();
            prop_assert_eq!(&m, &format!("{first}***@{domain}"));
            // The rest of the local part is gone (the identity function would keep it).
            let rest: String = local.chars().skip(1).collect();
            prop_assert!(!m.contains(&format!("{rest}@")), "{}", m);
        }

        #[test]
        fn address_mask_hides_the_first_line_and_keeps_the_others(
            street in "[0-9]{1,4} [A-Z][a-z]{2,10} St",
            city in "[A-Z][a-z]{2,10}",
            postcode in "[0-9]{5}",
        ) {
            let m = address(&format!("{street}\n{city}, {postcode}"));
            prop_assert_eq!(&m, &format!("***, {city}, {postcode}"));
            prop_assert!(!m.contains(&street));
            prop_assert_eq!(address(&street), "***");
        }
    }
}
