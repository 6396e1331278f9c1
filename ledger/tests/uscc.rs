//! GB 32100-2015 conformance of `yrd_ledger::uscc`: valid codes, every wrong check
//! character, transpositions, lengths, forbidden letters, non-ASCII input,
//! normalisation, and the canonical wire form.

use proptest::prelude::*;
use yrd_consensus::codec::{decode, encode};
use yrd_ledger::uscc::{check_character, Uscc, UsccError, ALPHABET, USCC_LEN, WEIGHTS};

/// Real codes whose check characters verify (from public registers).
const REAL: [&str; 4] = [
    "91350100M000100Y43",
    "91110000600037341L",
    "91230184MA1BUFLT44",
    "92371000MA3MXH0E3W",
];

/// Independent reference implementation of the check character, written from the
/// DESIGN.md formula without using the crate's tables.
fn reference_check(first17: &[u8]) -> u8 {
    let alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    let mut sum = 0u64;
    for (i, &b) in first17.iter().enumerate() {
        let value = alphabet.find(char::from(b)).expect("alphabet character") as u64;
        let weight = 3u64.pow(i as u32) % 31;
        sum += value * weight;
    }
    alphabet.as_bytes()[((31 - sum % 31) % 31) as usize]
}

/// What a correct validator must say about 18 alphabet bytes.
fn reference_valid(code: &[u8]) -> bool {
    code.len() == 18
        && code.iter().all(|b| ALPHABET.contains(b))
        && code[2..8].iter().all(u8::is_ascii_digit)
        && reference_check(&code[..17]) == code[17]
}

fn s(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("ascii")
}

#[test]
fn real_codes_are_valid() {
    for code in REAL {
        let parsed = Uscc::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(parsed.as_str(), code);
        assert_eq!(parsed.to_string(), code);
        assert_eq!(code.parse::<Uscc>(), Ok(parsed));
        assert_eq!(
            check_character(&code[..17]),
            Ok(code.chars().last().expect("18 chars"))
        );
    }
}

#[test]
fn a_widely_copied_example_with_a_wrong_check_character_is_rejected() {
    // Circulates as an example online; its check character is really 'T'.
    assert_eq!(
        Uscc::parse("91310000MA1FL4WF8W"),
        Err(UsccError::CheckCharacter {
            expected: 'T',
            got: 'W'
        })
    );
}

#[test]
fn every_wrong_check_character_is_rejected_with_expected_and_got() {
    for code in REAL {
        let expected = char::from(code.as_bytes()[17]);
        for &c in ALPHABET.iter().filter(|&&c| char::from(c) != expected) {
            let mut bad = code.as_bytes().to_vec();
            bad[17] = c;
            assert_eq!(
                Uscc::parse(s(&bad)),
                Err(UsccError::CheckCharacter {
                    expected,
                    got: char::from(c)
                }),
                "{}",
                s(&bad)
            );
        }
    }
}

#[test]
fn error_messages_name_the_reason() {
    let cases: [(&str, &str); 9] = [
        ("", "expected 18 characters, got 0"),
        ("91350100M000100Y4", "expected 18 characters, got 17"),
        ("9135O100M000100Y43", "character 'O' at position 5 is not allowed (I, O, S, V and Z are never used)"),
        ("91中50100M000100Y43", "character '中' at position 3 is not ASCII"),
        ("91350100M000100Y4X", "check character expected '3', got 'X'"),
        ("91A50100M000100Y43", "character 'A' at position 3 is not a digit (positions 3-8 are the administrative division code, digits only)"),
        ("9135.100M000100Y43", "character '.' at position 5 is not allowed (only digits 0-9 and letters A-Z except I, O, S, V, Z)"),
        ("９1350100M000100Y43", "character '９' at position 1 is full-width (U+FF19); full-width characters are not accepted, type the ASCII '9' instead"),
        ("9135\u{3000}0100M000100Y43", "character '\\u{3000}' at position 5 is full-width (U+3000); full-width characters are not accepted, type the ASCII ' ' instead"),
    ];
    for (input, message) in cases {
        let err = Uscc::parse(input).expect_err(input);
        assert_eq!(err.to_string(), message, "{input:?}");
    }
}

#[test]
fn wrong_lengths() {
    let valid = REAL[0];
    for (input, got) in [
        (String::new(), 0),
        (valid[..17].to_string(), 17),
        (format!("{valid}0"), 19),
        (valid[..1].to_string(), 1),
        (valid.repeat(3), 54),
    ] {
        assert_eq!(
            Uscc::parse(&input),
            Err(UsccError::Length { expected: 18, got }),
            "{input:?}"
        );
    }
    // Spaces and hyphens do not count towards the length.
    assert_eq!(
        Uscc::parse("9135-0100-M000100Y4"),
        Err(UsccError::Length {
            expected: 18,
            got: 17
        })
    );
}

#[test]
fn each_forbidden_letter_at_each_position() {
    let valid = REAL[1].as_bytes();
    for letter in [b'I', b'O', b'S', b'V', b'Z'] {
        for lower in [false, true] {
            let typed = if lower {
                letter.to_ascii_lowercase()
            } else {
                letter
            };
            for index in 0..USCC_LEN {
                let mut bad = valid.to_vec();
                bad[index] = typed;
                assert_eq!(
                    Uscc::parse(s(&bad)),
                    Err(UsccError::ForbiddenLetter {
                        position: index + 1,
                        got: char::from(typed)
                    }),
                    "{}",
                    s(&bad)
                );
            }
        }
    }
}

#[test]
fn non_ascii_junk() {
    let cases: [(&str, UsccError); 6] = [
        (
            "统一社会信用代码",
            UsccError::NonAscii {
                position: 1,
                got: '统',
            },
        ),
        (
            "91350100M000100Y4é",
            UsccError::NonAscii {
                position: 18,
                got: 'é',
            },
        ),
        (
            "913501\u{00A0}00M000100Y43",
            UsccError::NonAscii {
                position: 7,
                got: '\u{a0}',
            },
        ),
        (
            "\u{FEFF}91350100M000100Y43",
            UsccError::NonAscii {
                position: 1,
                got: '\u{feff}',
            },
        ),
        (
            "９１３５０１００Ｍ０００１００Ｙ４３",
            UsccError::FullWidth {
                position: 1,
                got: '９',
                ascii: '9',
            },
        ),
        (
            "91350100Ｍ000100Y43",
            UsccError::FullWidth {
                position: 9,
                got: 'Ｍ',
                ascii: 'M',
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(Uscc::parse(input), Err(expected), "{input:?}");
    }
    // Other ASCII junk: tabs inside, punctuation, underscores.
    assert_eq!(
        Uscc::parse("91350100M0\t00100Y43"),
        Err(UsccError::NotAllowed {
            position: 11,
            got: '\t'
        })
    );
    assert_eq!(
        Uscc::parse("91350100_M000100Y43"),
        Err(UsccError::NotAllowed {
            position: 9,
            got: '_'
        })
    );
}

#[test]
fn lowercase_spaces_and_hyphens_are_normalised() {
    let canonical = Uscc::parse("91310000MA1FL4WF8T").expect("valid");
    for input in [
        "91310000ma1fl4wf8t",
        "  91310000MA1FL4WF8T \t\r\n",
        "9131 0000 MA1F L4WF 8T",
        "91-310000-MA1FL4WF8-T",
        " 9 1 3 1 0 0 0 0 m a 1 f l 4 w f 8 t ",
        "--91310000MA1FL4WF8T--",
    ] {
        assert_eq!(Uscc::parse(input), Ok(canonical), "{input:?}");
    }
    // Positions in errors count the normalised code.
    assert_eq!(
        Uscc::parse("91-31 00 0O MA1FL4WF8T"),
        Err(UsccError::ForbiddenLetter {
            position: 8,
            got: 'O'
        })
    );
}

#[test]
fn every_single_substitution_of_a_real_code_is_rejected() {
    for code in REAL {
        for index in 0..USCC_LEN {
            for &c in ALPHABET.iter() {
                let mut bad = code.as_bytes().to_vec();
                if bad[index] == c {
                    continue;
                }
                bad[index] = c;
                assert!(Uscc::parse(s(&bad)).is_err(), "{}", s(&bad));
            }
        }
    }
}

/// Weighted mod-31 checksum: swapping positions i and j changes the sum by
/// (vᵢ − vⱼ)(wⱼ − wᵢ), with w₁₈ = 1. Because 3 is a primitive root mod 31 the
/// weights 1..17 are distinct and w₁₈ = 1 = w₁, so every transposition of two
/// different characters is caught except between positions 1 and 18.
#[test]
fn transpositions_agree_with_recomputation() {
    let mut samples: Vec<Uscc> = REAL
        .iter()
        .map(|c| Uscc::parse(c).expect("valid"))
        .collect();
    samples.extend((0..500).map(Uscc::sample));
    let mut undetected = 0;
    for code in samples {
        for i in 0..USCC_LEN {
            for j in i + 1..USCC_LEN {
                let mut swapped = *code.as_bytes();
                swapped.swap(i, j);
                let accepted = Uscc::parse(s(&swapped)).is_ok();
                assert_eq!(
                    accepted,
                    reference_valid(&swapped),
                    "{} swap {i},{j}",
                    s(&swapped)
                );
                let distinct = swapped != *code.as_bytes();
                if j == i + 1 {
                    // Adjacent transpositions of different characters: always caught.
                    assert!(!(accepted && distinct), "adjacent {} {i}", s(&swapped));
                }
                if accepted && distinct {
                    assert_eq!((i, j), (0, 17), "only positions 1 and 18 share a weight");
                    undetected += 1;
                }
            }
        }
    }
    assert!(
        undetected > 0,
        "the 1↔18 blind spot should show up in 504 samples"
    );
}

#[test]
fn check_character_rejects_bad_prefixes() {
    assert_eq!(
        check_character("91350100M000100Y"),
        Err(UsccError::Length {
            expected: 17,
            got: 16
        })
    );
    assert_eq!(
        check_character("9135010OM000100Y4"),
        Err(UsccError::ForbiddenLetter {
            position: 8,
            got: 'O'
        })
    );
    assert_eq!(check_character("91350100m000100y4"), Ok('3'));
    assert_eq!(
        Uscc::complete("91350100M000100Y4").map(|c| c.to_string()),
        Ok(REAL[0].to_string())
    );
}

#[test]
fn ordering_hash_and_copy() {
    let a = Uscc::parse("91110000600037341L").expect("valid");
    let b = Uscc::parse("91350100M000100Y43").expect("valid");
    assert!(a < b);
    let c = a; // Copy
    assert_eq!(a, c);
    let set: std::collections::HashSet<Uscc> = [a, b, c].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert_eq!(format!("{a:?}"), "Uscc(91110000600037341L)");
    assert_eq!(a.division_code(), "110000");
}

#[test]
fn wire_form_is_the_18_bytes_without_prefix() {
    let code = Uscc::parse(REAL[0]).expect("valid");
    let bytes = encode(&code).expect("encode");
    assert_eq!(bytes, REAL[0].as_bytes());
    assert_eq!(decode::<Uscc>(&bytes, 64, "uscc"), Ok(code));
    // Inside a struct it is still fixed-width: no length prefix.
    let pair = encode(&(7u8, code)).expect("encode");
    assert_eq!(pair.len(), 19);
}

#[test]
fn wire_form_rejects_invalid_bytes() {
    let good = REAL[0].as_bytes();
    let reject = |bytes: &[u8], needle: &str| {
        let err = decode::<Uscc>(bytes, 64, "uscc").expect_err(&format!("{bytes:?}"));
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle:?}"
        );
    };
    let mut wrong_check = good.to_vec();
    wrong_check[17] = b'X';
    reject(&wrong_check, "check character expected '3', got 'X'");
    let mut lower = good.to_vec();
    lower[8] = b'm';
    reject(
        &lower,
        "byte 0x6D at position 9 is not a canonical USCC character",
    );
    let mut forbidden = good.to_vec();
    forbidden[4] = b'O';
    reject(&forbidden, "character 'O' at position 5 is not allowed");
    let mut high = good.to_vec();
    high[0] = 0xFF;
    reject(&high, "byte 0xFF at position 1");
    let mut space = good.to_vec();
    space[3] = b' ';
    reject(&space, "byte 0x20 at position 4");
    let mut letter_in_division = good.to_vec();
    letter_in_division[2] = b'A';
    reject(&letter_in_division, "position 3 is not a digit");
    // Truncated and over-long inputs.
    assert!(decode::<Uscc>(&good[..17], 64, "uscc").is_err());
    let mut long = good.to_vec();
    long.push(b'0');
    assert!(decode::<Uscc>(&long, 64, "uscc").is_err());
}

#[test]
fn json_form_is_the_string() {
    let code = Uscc::parse(REAL[2]).expect("valid");
    let json = serde_json::to_string(&code).expect("json");
    assert_eq!(json, format!("\"{}\"", REAL[2]));
    assert_eq!(serde_json::from_str::<Uscc>(&json).expect("json"), code);
    // JSON input is normalised like user input, and rejections carry the reason.
    assert_eq!(
        serde_json::from_str::<Uscc>("\"91230184-ma1bufLt44\"").expect("json"),
        code
    );
    let err = serde_json::from_str::<Uscc>("\"91230184MA1BUFLT45\"").expect_err("bad check");
    assert!(
        err.to_string()
            .contains("check character expected '4', got '5'"),
        "{err}"
    );
    assert!(serde_json::from_str::<Uscc>("[57,49]").is_err());
}

fn arb_uscc() -> impl Strategy<Value = Uscc> {
    any::<u64>().prop_map(|i| Uscc::sample(i % 26_439_622_160_671))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_codes_parse_and_round_trip(code in arb_uscc()) {
        prop_assert_eq!(Uscc::parse(code.as_str()), Ok(code));
        prop_assert_eq!(Uscc::parse(&code.as_str().to_ascii_lowercase()), Ok(code));
        let bytes = encode(&code).expect("encode");
        prop_assert_eq!(decode::<Uscc>(&bytes, 64, "uscc"), Ok(code));
        prop_assert!(reference_valid(code.as_bytes()));
    }

    #[test]
    fn every_single_substitution_is_rejected(
        code in arb_uscc(),
        index in 0..USCC_LEN,
        replacement in 0u8..128,
    ) {
        let mut bad = *code.as_bytes();
        // Lower case of the same letter is a normalisation, not a substitution.
        prop_assume!(bad[index] != replacement.to_ascii_uppercase());
        bad[index] = replacement;
        let text = String::from_utf8(bad.to_vec()).expect("ascii");
        prop_assert!(Uscc::parse(&text).is_err(), "{}", text);
        prop_assert!(decode::<Uscc>(&bad, 64, "uscc").is_err(), "{}", text);
    }

    #[test]
    fn arbitrary_bytes_decode_only_if_valid(bytes in proptest::array::uniform18(any::<u8>())) {
        let decoded = decode::<Uscc>(&bytes, 64, "uscc");
        prop_assert_eq!(decoded.is_ok(), reference_valid(&bytes));
    }

    #[test]
    fn parse_never_panics_and_agrees_with_reference(input in "[0-9A-Za-z \\-中Ａ]{0,24}") {
        let normalised: String = input.chars().filter(|c| *c != ' ' && *c != '-')
            .map(|c| c.to_ascii_uppercase()).collect();
        let ok = Uscc::parse(&input).is_ok();
        prop_assert_eq!(ok, reference_valid(normalised.as_bytes()), "{:?}", input);
    }

    #[test]
    fn check_character_completes_any_valid_prefix(code in arb_uscc()) {
        let first17 = &code.as_str()[..17];
        prop_assert_eq!(check_character(first17), Ok(char::from(code.as_bytes()[17])));
        prop_assert_eq!(reference_check(first17.as_bytes()), code.as_bytes()[17]);
    }
}

#[test]
fn weights_table_matches_design() {
    assert_eq!(
        WEIGHTS,
        [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    );
}
