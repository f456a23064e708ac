//! The grant checker, on any answer a guest could give: it never panics,
//! and with no grants it lets through only answers that change nothing
//! (deny by default). With the example plugins' grants it checks too.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nri_proto::{
    adjust::AdjustmentMerge,
    api::{Container, CreateContainerResponse},
};
use nri_wasm::{
    config::Config,
    grants::{check_answer, Grants, Targets},
};
use nri_wasm_fuzz::payload;
use protobuf::{
    reflect::{RuntimeFieldType, RuntimeType},
    Message, MessageDyn,
};

/// The grants of the example plugins' configuration.
fn example_grants() -> &'static [Grants] {
    static GRANTS: OnceLock<Vec<Grants>> = OnceLock::new();
    GRANTS.get_or_init(|| {
        let text = include_str!("../../guest-examples/nri-wasm.toml");
        let config = Config::parse(text).expect("the example configuration parses");
        let names: Vec<String> = config.named_guests().map(str::to_string).collect();
        names.iter().map(|n| config.guest(n).grants).collect()
    })
}

/// Clears the sub-messages that hold nothing, which the runtime reads as
/// absent: a merge may leave an empty `linux` behind. The `Optional*`
/// wrappers stay, since a wrapped zero is a value.
fn prune_empty(message: &mut dyn MessageDyn) {
    for field in message.descriptor_dyn().fields() {
        let RuntimeFieldType::Singular(RuntimeType::Message(kind)) = field.runtime_field_type()
        else {
            continue;
        };
        if kind.name().starts_with("Optional") || !field.has_field(message) {
            continue;
        }
        let sub = field.mut_message(message);
        prune_empty(sub);
        if sub.compute_size_dyn() == 0 {
            field.clear_field(message);
        }
    }
}

fn container() -> Container {
    Container {
        id: "c".into(),
        pod_sandbox_id: "p".into(),
        name: "app".into(),
        env: vec!["PATH=/bin".into()],
        ..Default::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let body = payload(data).unwrap_or_else(|| data.to_vec());
    let Ok(answer) = CreateContainerResponse::parse_from_bytes(&body) else {
        return;
    };
    let pod_of = |id: &str| id.len().is_multiple_of(2).then(|| "p".to_string());
    let context = Targets {
        own: None,
        pod_id: Some("p"),
        visible_pod_of: &pod_of,
        user_namespace: false,
    };
    let adjust = answer.adjust.as_ref();
    let check =
        |grants: &Grants| check_answer(grants, adjust, &answer.update, &answer.evict, &context);

    if check(&Grants::default()).is_empty() {
        if let Some(adjust) = adjust {
            let mut merge = AdjustmentMerge::new(container());
            if merge.apply("fuzz", adjust).is_ok() {
                prune_empty(&mut merge.container);
                assert_eq!(
                    merge.container,
                    container(),
                    "an adjustment passed with no grants and changed the container"
                );
            }
        }
        assert!(answer.evict.is_empty(), "an eviction passed with no grants");
    }
    for grants in example_grants() {
        let _ = check(grants);
    }
});
