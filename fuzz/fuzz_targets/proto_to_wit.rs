//! The conversion between NRI's protobuf messages and the WIT records
//! guests see, on whatever the runtime can send: it never panics, and a
//! message that went through WIT once comes back the same the second
//! time (the first trip drops only what WIT cannot hold: unknown fields,
//! duplicate flags), and what came back from WIT, as nri-wasm sends it,
//! encodes to bytes that decode to it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nri_proto::api;
use nri_wasm::runtime::bindings::types as wit;
use nri_wasm_fuzz::{holds_negative_packed_enum, payload};
use protobuf::{Message, MessageFull};

/// Through WIT twice: the second trip changes nothing, and the message
/// built from WIT survives its encoding.
fn settles<M, W>(message: &M)
where
    M: MessageFull + From<W>,
    W: for<'a> From<&'a M>,
{
    let once = M::from(W::from(message));
    let twice = M::from(W::from(&once));
    assert_eq!(once, twice);
    assert!(!holds_negative_packed_enum(&once));
    let bytes = once.write_to_bytes().expect("a message from WIT encodes");
    assert_eq!(M::parse_from_bytes(&bytes).ok().as_ref(), Some(&once));
}

fn pod_and_container(pod: Option<&api::PodSandbox>, container: Option<&api::Container>) {
    if let Some(pod) = pod {
        settles::<_, wit::PodSandbox>(pod);
    }
    if let Some(container) = container {
        settles::<_, wit::Container>(container);
    }
}

fuzz_target!(|data: &[u8]| {
    // A captured ttrpc message, or a bare protobuf body.
    let body = payload(data).unwrap_or_else(|| data.to_vec());
    if let Ok(r) = api::CreateContainerRequest::parse_from_bytes(&body) {
        pod_and_container(r.pod.as_ref(), r.container.as_ref());
    }
    if let Ok(r) = api::SynchronizeRequest::parse_from_bytes(&body) {
        r.pods.iter().for_each(|p| pod_and_container(Some(p), None));
        r.containers
            .iter()
            .for_each(|c| pod_and_container(None, Some(c)));
    }
    if let Ok(r) = api::UpdateContainerRequest::parse_from_bytes(&body) {
        if let Some(resources) = r.linux_resources.as_ref() {
            let _ = wit::LinuxResources::from(resources);
        }
    }
    if let Ok(r) = api::ValidateContainerAdjustmentRequest::parse_from_bytes(&body) {
        settles::<_, wit::ValidateRequest>(&r);
    }
    if let Ok(r) = api::CreateContainerResponse::parse_from_bytes(&body) {
        if let Some(adjust) = r.adjust.as_ref() {
            settles::<_, wit::ContainerAdjustment>(adjust);
        }
        r.update.iter().for_each(settles::<_, wit::ContainerUpdate>);
        r.evict
            .iter()
            .for_each(settles::<_, wit::ContainerEviction>);
    }
});
