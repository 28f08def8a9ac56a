//! Tests of the wire format: requests parsed and encoded, replies written and parsed.

use super::*;
use crate::client::format_reply;
use proptest::prelude::*;

fn args(p: Parse<'_>) -> (Vec<Vec<u8>>, usize) {
    match p {
        Parse::Complete(a, n) => (a.into_iter().map(<[u8]>::to_vec).collect(), n),
        other => panic!("expected a complete request, got {other:?}"),
    }
}

fn err_text(p: Parse<'_>) -> String {
    match p {
        Parse::Error(e) => e.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn v(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

const REQUESTS: &[&[u8]] = &[
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n",
    b"*1\r\n$4\r\nPING\r\n",
    b"SET key value\r\n",
    b"GET key\n",
    b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
    b"*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n",
];

#[test]
fn every_split_point_gives_incomplete_then_the_same_request() {
    for req in REQUESTS {
        let (whole, used) = args(parse(req));
        assert_eq!(used, req.len());
        for cut in 0..req.len() {
            assert_eq!(
                parse(&req[..cut]),
                Parse::Incomplete,
                "{:?} cut at {cut}",
                String::from_utf8_lossy(req)
            );
        }
        assert_eq!(args(parse(req)).0, whole);
    }
}

#[test]
fn binary_safe_bulk_keeps_crlf_inside() {
    let (a, _) = args(parse(b"*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n"));
    assert_eq!(a, vec![b"GET".to_vec(), b"a\r\nb".to_vec()]);
}

#[test]
fn pipelined_batch_parses_one_by_one() {
    let batch: Vec<u8> = REQUESTS.concat();
    let mut pos = 0;
    let mut n = 0;
    while pos < batch.len() {
        let (_, used) = args(parse(&batch[pos..]));
        pos += used;
        n += 1;
    }
    assert_eq!(n, REQUESTS.len());
}

#[test]
fn inline_forms() {
    assert_eq!(args(parse(b"SET  k   v\r\n")).0, v(&["SET", "k", "v"]));
    assert_eq!(args(parse(b"ping\n")).0, v(&["ping"]));
    assert_eq!(args(parse(b"\r\n")), (vec![], 2));
    assert_eq!(args(parse(b"*0\r\n")), (vec![], 4));
    assert_eq!(args(parse(b"*-1\r\n")), (vec![], 5));
}

#[test]
fn inline_line_limit() {
    let mut ok = vec![b'a'; MAX_LINE];
    ok.extend_from_slice(b"\r\n");
    assert_eq!(args(parse(&ok)).1, MAX_LINE + 2);
    let mut long = vec![b'a'; MAX_LINE + 1];
    long.push(b'\n');
    assert!(err_text(parse(&long)).contains("too big inline request"));
    // No newline at all: refused as soon as the limit is passed, without a newline.
    let flood = vec![b'a'; MAX_LINE + 2];
    assert!(err_text(parse(&flood)).contains("too big inline request"));
    assert_eq!(parse(&flood[..MAX_LINE]), Parse::Incomplete);
}

#[test]
fn too_many_arguments() {
    let e = err_text(parse(b"*1025\r\n"));
    assert!(e.contains("invalid multibulk length"), "{e}");
    assert!(parse(b"*1024\r\n") == Parse::Incomplete);
    let mut inline = "x ".repeat(MAX_ARGS + 1).into_bytes();
    inline.push(b'\n');
    assert!(err_text(parse(&inline)).contains("too many arguments"));
}

#[test]
fn bulk_limit_is_checked_before_the_bytes_arrive() {
    let e = err_text(parse(b"*2\r\n$3\r\nGET\r\n$1048577\r\n"));
    assert_eq!(e, "Protocol error: invalid bulk length");
    assert_eq!(parse(b"*2\r\n$3\r\nGET\r\n$1048576\r\n"), Parse::Incomplete);
}

#[test]
fn total_request_limit() {
    let mut req = b"*9\r\n".to_vec();
    for _ in 0..9 {
        req.extend_from_slice(format!("${MAX_BULK}\r\n").as_bytes());
        req.extend(std::iter::repeat_n(b'x', MAX_BULK));
        req.extend_from_slice(b"\r\n");
    }
    assert!(err_text(parse(&req)).contains("request larger than 8 MiB"));
}

#[test]
fn malformed_lengths_are_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"*-5x\r\n", "invalid multibulk length"),
        (b"*-5\r\n", "invalid multibulk length"),
        (b"*-0\r\n", "invalid multibulk length"),
        (b"*01\r\n", "invalid multibulk length"),
        (b"*1\r\n$-0\r\n", "invalid bulk length"),
        (b"*1\r\n$03\r\nGET\r\n", "invalid bulk length"),
        (b"*abc\r\n", "invalid multibulk length"),
        (b"*99999999999999999999999\r\n", "invalid multibulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$-100\r\n", "invalid bulk length"),
        (b"*1\r\n$\r\n", "invalid bulk length"),
        (b"*1\r\n$9223372036854775807\r\n", "invalid bulk length"),
        (b"*1\r\n$18446744073709551616\r\n", "invalid bulk length"),
        (b"*1\r\n$1x\r\n", "invalid bulk length"),
        (b"*1\r\n:1\r\n", "expected '$', got ':'"),
        (b"*1\r\n$1\r\nab\r\n", "not followed by CRLF"),
        (b"*1\n", "not terminated by CRLF"),
    ];
    for (input, want) in cases {
        let e = err_text(parse(input));
        assert!(
            e.contains(want),
            "{:?}: {e}",
            String::from_utf8_lossy(input)
        );
    }
    let huge_header = [b"*1\r\n$".as_slice(), &vec![b'9'; MAX_LINE + 2]].concat();
    assert!(err_text(parse(&huge_header)).contains("too big bulk length line"));
}

#[test]
fn encoders_and_reply_parser_round_trip() {
    let mut out = Vec::new();
    simple(&mut out, "OK");
    error(&mut out, "ERR bad\r\ninjected");
    integer(&mut out, -42);
    integer(&mut out, i64::MIN);
    bulk(&mut out, b"v\x00");
    nil(&mut out, Resp::V2);
    array_len(&mut out, 2);
    bulk(&mut out, b"a");
    integer(&mut out, 1);
    let want = [
        Reply::Status("OK".into()),
        Reply::Error("ERR bad  injected".into()),
        Reply::Integer(-42),
        Reply::Integer(i64::MIN),
        Reply::Bulk(Some(b"v\x00".to_vec())),
        Reply::Bulk(None),
        Reply::Array(Some(vec![
            Reply::Bulk(Some(b"a".to_vec())),
            Reply::Integer(1),
        ])),
    ];
    let mut pos = 0;
    for (i, w) in want.iter().enumerate() {
        match parse_reply(&out[pos..]) {
            ReplyParse::Complete(r, used) => {
                assert_eq!(&r, w, "{i}");
                pos += used;
            }
            other => panic!("{i}: {other:?}"),
        }
    }
    assert_eq!(pos, out.len());
}

#[test]
fn format_like_redis_cli() {
    assert_eq!(
        format_reply(&Reply::Bulk(Some(b"a\"b\n\x01".to_vec()))),
        "\"a\\\"b\\n\\x01\"\n"
    );
    assert_eq!(format_reply(&Reply::Integer(3)), "(integer) 3\n");
    assert_eq!(format_reply(&Reply::Bulk(None)), "(nil)\n");
    assert_eq!(
        format_reply(&Reply::Error("ERR x".into())),
        "(error) ERR x\n"
    );
    assert_eq!(format_reply(&Reply::Array(Some(vec![]))), "(empty array)\n");
    let nested = Reply::Array(Some(vec![
        Reply::Array(Some(vec![Reply::Integer(1), Reply::Integer(2)])),
        Reply::Bulk(Some(b"c".to_vec())),
    ]));
    assert_eq!(
        format_reply(&nested),
        "1) 1) (integer) 1\n   2) (integer) 2\n2) \"c\"\n"
    );
}

#[test]
fn reply_parser_limits() {
    assert!(matches!(
        parse_reply(b"$999999999999\r\n"),
        ReplyParse::Error(_)
    ));
    let deep = "*1\r\n".repeat(100);
    assert!(matches!(parse_reply(deep.as_bytes()), ReplyParse::Error(_)));
    assert_eq!(parse_reply(b"*1000000\r\n"), ReplyParse::Incomplete);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random bytes never panic, and a Complete never claims more than it was given.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut pos = 0;
        while pos < bytes.len() {
            match parse(&bytes[pos..]) {
                Parse::Complete(a, used) => {
                    prop_assert!(used > 0 && pos + used <= bytes.len());
                    prop_assert!(a.len() <= MAX_ARGS);
                    pos += used;
                }
                Parse::Incomplete | Parse::Error(_) => break,
            }
        }
        let _ = parse_reply(&bytes);
    }

    /// Random RESP-looking input (sigils, digits, CRLF) stresses the length paths.
    #[test]
    fn resp_shaped_noise_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()),
                Just(b"-".to_vec()), Just(b"-1".to_vec()), Just(b"1048577".to_vec()),
                Just(b"99999999999999999999".to_vec()), Just(b"3".to_vec()),
                Just(b"abc".to_vec()), Just(b"\n".to_vec()),
            ],
            0..40,
        )
    ) {
        let bytes = parts.concat();
        let _ = parse(&bytes);
        let _ = parse_reply(&bytes);
    }

    /// A batch of valid requests, cut into random pieces and fed as a server reads them,
    /// yields exactly the requests that were sent.
    #[test]
    fn random_splits_of_a_pipelined_batch(
        reqs in proptest::collection::vec(
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
            1..8,
        ),
        cuts in proptest::collection::vec(1usize..64, 1..40),
    ) {
        let mut wire = Vec::new();
        for r in &reqs {
            encode_request(r, &mut wire);
        }
        let mut got: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut sent = 0;
        let mut cut = cuts.iter().cycle();
        while sent < wire.len() {
            let n = (*cut.next().unwrap()).min(wire.len() - sent);
            buf.extend_from_slice(&wire[sent..sent + n]);
            sent += n;
            loop {
                match parse(&buf) {
                    Parse::Complete(a, used) => {
                        got.push(a.into_iter().map(<[u8]>::to_vec).collect());
                        buf.drain(..used);
                    }
                    Parse::Incomplete => break,
                    Parse::Error(e) => return Err(TestCaseError::fail(e.to_string())),
                }
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, reqs);
    }
}
