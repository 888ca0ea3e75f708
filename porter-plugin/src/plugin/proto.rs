//! The wire types: code generated from `proto/` (DS service, HostConfig, go-plugin control
//! services) plus a hand-written [`ExecuteRequest`] that accepts both layouts hosts send.

#![allow(missing_docs, clippy::all, unused_qualifications, dead_code)]

use std::collections::BTreeMap;

use prost::bytes::{Buf, BufMut};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

tonic::include_proto!("plugin");

/// `ExecuteRequest` as any DS host encodes it (ds-contract §2.3).
///
/// The G4+ `.proto` puts the broker id in field 3; the code compiled into those hosts still
/// sends the legacy `env` map in field 3 (length-delimited) and the broker id in field 4. Decoding
/// reads field 4 when present, else field 3 when it is a varint, and keeps a length-delimited
/// field 3 as the legacy env map without ever failing on it. Encoding writes the G4+ layout.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExecuteRequest {
    /// The operation (`pull`, `list`, …), verbatim.
    pub operation: String,
    /// `key=value` arguments (or raw tokens from G1 hosts).
    pub args: Vec<String>,
    /// The broker id from field 3 (G4+ `.proto` layout).
    pub broker_id_field3: Option<u32>,
    /// The broker id from field 4 (legacy compiled layout).
    pub broker_id_field4: Option<u32>,
    /// Legacy `env` map entries from field 3.
    pub env: BTreeMap<String, String>,
}

impl ExecuteRequest {
    /// The host-config broker id; 0 means "no host config provider".
    pub fn broker_id(&self) -> u32 {
        self.broker_id_field4.or(self.broker_id_field3).unwrap_or(0)
    }
}

impl std::fmt::Debug for ExecuteRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The env map may carry secrets (DS_* variables of old hosts): show only its keys.
        f.debug_struct("ExecuteRequest")
            .field("operation", &self.operation)
            .field("args", &self.args)
            .field("broker_id", &self.broker_id())
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One entry of the legacy `map<string,string> env = 3`.
#[derive(Clone, PartialEq, Message)]
struct EnvEntry {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

impl Message for ExecuteRequest {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if !self.operation.is_empty() {
            encoding::string::encode(1, &self.operation, buf);
        }
        encoding::string::encode_repeated(2, &self.args, buf);
        let id = self.broker_id();
        if id != 0 {
            encoding::uint32::encode(3, &id, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match (tag, wire_type) {
            (1, _) => encoding::string::merge(wire_type, &mut self.operation, buf, ctx),
            (2, _) => encoding::string::merge_repeated(wire_type, &mut self.args, buf, ctx),
            (3, WireType::Varint) => {
                let mut id = 0;
                encoding::uint32::merge(wire_type, &mut id, buf, ctx)?;
                self.broker_id_field3 = Some(id);
                Ok(())
            }
            (3, WireType::LengthDelimited) => {
                let mut entry = Vec::new();
                encoding::bytes::merge(wire_type, &mut entry, buf, ctx)?;
                if let Ok(entry) = EnvEntry::decode(entry.as_slice()) {
                    self.env.insert(entry.key, entry.value);
                }
                Ok(())
            }
            (4, WireType::Varint) => {
                let mut id = 0;
                encoding::uint32::merge(wire_type, &mut id, buf, ctx)?;
                self.broker_id_field4 = Some(id);
                Ok(())
            }
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let op = if self.operation.is_empty() {
            0
        } else {
            encoding::string::encoded_len(1, &self.operation)
        };
        let id = self.broker_id();
        let id = if id == 0 {
            0
        } else {
            encoding::uint32::encoded_len(3, &id)
        };
        op + encoding::string::encoded_len_repeated(2, &self.args) + id
    }

    fn clear(&mut self) {
        *self = ExecuteRequest::default();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn legacy(env: &[(&str, &str)], broker: u32) -> Vec<u8> {
        LegacyExecuteRequest {
            operation: "list".into(),
            args: vec!["a=b".into()],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            host_config_broker_id: broker,
        }
        .encode_to_vec()
    }

    #[test]
    fn reads_the_broker_id_from_field_3_when_it_is_a_varint() {
        let bytes = ExecuteRequest {
            operation: "pull".into(),
            broker_id_field3: Some(7),
            ..Default::default()
        }
        .encode_to_vec();
        let req = ExecuteRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!((req.operation.as_str(), req.broker_id()), ("pull", 7));
    }

    #[test]
    fn reads_the_legacy_layout_with_env_map_in_field_3_and_broker_id_in_field_4() {
        let req = ExecuteRequest::decode(legacy(&[("K", "V"), ("X", "")], 1).as_slice()).unwrap();
        assert_eq!(req.broker_id(), 1);
        assert_eq!(req.args, ["a=b"]);
        assert_eq!(req.env.get("K").map(String::as_str), Some("V"));
        assert!(format!("{req:?}").contains("env_keys"));
        assert!(!format!("{req:?}").contains("\"V\""));
    }

    #[test]
    fn field_4_wins_over_field_3_and_garbage_map_entries_do_not_fail() {
        let mut bytes = Vec::new();
        encoding::uint32::encode(3, &9, &mut bytes);
        encoding::bytes::encode(3, &vec![0xff, 0xff], &mut bytes);
        encoding::uint32::encode(4, &2, &mut bytes);
        encoding::string::encode(99, &"unknown".to_string(), &mut bytes);
        let req = ExecuteRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(req.broker_id(), 2);
        assert!(req.env.is_empty());
    }

    #[test]
    fn no_broker_id_is_zero() {
        let req = ExecuteRequest::decode(legacy(&[], 0).as_slice()).unwrap();
        assert_eq!(req.broker_id(), 0);
    }
}
