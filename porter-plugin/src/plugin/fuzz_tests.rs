//! Property tests of what a DS host sends: `ExecuteRequest` bytes in any layout and the
//! `key=value` arguments (or raw G1 tokens) inside them. No input may panic the plugin or make
//! it allocate without bound; encoding and decoding agree. A fixed case count bounds CI time.

use proptest::prelude::*;
use prost::Message;

use super::args::{PluginArgs, normalize_tokens};
use super::proto::ExecuteRequest;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Argument strings as hosts and people write them, hostile ones included.
fn arg() -> impl Strategy<Value = String> {
    prop_oneof![
        "arg[+-]?[0-9]{0,25}=[a-z]{0,5}",
        "[a-z]{0,6}=\\PC{0,8}",
        "-{0,2}[a-zA-Z]{0,6}(=[a-z0-9]{0,4})?",
        Just("=".to_owned()),
        Just("--".to_owned()),
        Just("-".to_owned()),
        Just("-1.5".to_owned()),
        "\\PC{0,12}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn plugin_args_never_panic_or_explode(args in prop::collection::vec(arg(), 0..10)) {
        let parsed = PluginArgs::from_request(&args);
        prop_assert!(parsed.positionals().len() <= 4096, "{} positional slots", parsed.positionals().len());
        let _ = parsed.cleaned_positionals();
        for key in ["arg0", "output", "platform", "insecure", ""] {
            let _ = (parsed.first(key), parsed.all(key), parsed.bool(key));
        }
        let _ = normalize_tokens(&args);
    }

    #[test]
    fn execute_request_decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(request) = ExecuteRequest::decode(bytes.as_slice()) {
            let _ = (request.broker_id(), format!("{request:?}"));
        }
    }

    #[test]
    fn execute_requests_round_trip(
        operation in "\\PC{0,10}",
        args in prop::collection::vec("\\PC{0,10}", 0..5),
        broker in any::<u32>(),
    ) {
        let request = ExecuteRequest {
            operation,
            args,
            broker_id_field3: Some(broker).filter(|b| *b != 0),
            ..ExecuteRequest::default()
        };
        let decoded = ExecuteRequest::decode(request.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(decoded.broker_id(), broker);
        prop_assert_eq!(decoded.operation, request.operation);
        prop_assert_eq!(decoded.args, request.args);
    }
}
