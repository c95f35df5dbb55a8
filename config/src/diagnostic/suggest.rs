//! "Did you mean ...?" for misspelt keys and names.

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&input, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `help` text for an unknown name: the nearest valid one, or the list of valid ones.
pub(crate) fn unknown_name_help<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    match did_you_mean(input, candidates.clone()) {
        Some(near) => format!("did you mean `{near}`?"),
        None => {
            let all: Vec<String> = candidates.into_iter().map(|c| format!("`{c}`")).collect();
            format!("expected one of {}", all.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_plausible_name_only() {
        let keys = ["connect_timeout", "idle_timeout", "keepalive"];
        assert_eq!(
            did_you_mean("conect_timeout", keys),
            Some("connect_timeout")
        );
        assert_eq!(did_you_mean("KeepAlive", keys), Some("keepalive"));
        assert_eq!(did_you_mean("zzz", keys), None);
        assert_eq!(
            unknown_name_help("zzz", ["a", "b"]),
            "expected one of `a`, `b`"
        );
    }
}
