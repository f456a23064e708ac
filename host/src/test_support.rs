//! Test helpers shared by unit tests of several modules.

use protobuf::{
    reflect::{MessageDescriptor, ReflectValueBox, RuntimeFieldType, RuntimeType},
    MessageDyn, MessageFull,
};
use rand::{rngs::StdRng, Rng};

fn value(rng: &mut StdRng, ty: &RuntimeType) -> ReflectValueBox {
    match ty {
        // Field numbers of owner maps are the only i32 keys and values.
        RuntimeType::I32 => ReflectValueBox::I32(rng.random_range(0..=40)),
        RuntimeType::I64 => ReflectValueBox::I64(rng.random()),
        RuntimeType::U32 => ReflectValueBox::U32(rng.random()),
        RuntimeType::U64 => ReflectValueBox::U64(rng.random()),
        RuntimeType::F32 => ReflectValueBox::F32(rng.random()),
        RuntimeType::F64 => ReflectValueBox::F64(rng.random()),
        RuntimeType::Bool => ReflectValueBox::Bool(rng.random()),
        RuntimeType::String => ReflectValueBox::String(format!("s{}", rng.random::<u16>())),
        RuntimeType::VecU8 => ReflectValueBox::Bytes(vec![rng.random()]),
        RuntimeType::Enum(e) => {
            let values: Vec<i32> = e.values().map(|v| v.value()).collect();
            ReflectValueBox::Enum(e.clone(), values[rng.random_range(0..values.len())])
        }
        RuntimeType::Message(m) => ReflectValueBox::Message(filled(rng, m)),
    }
}

/// A message of type `descriptor` with every field set, to random values
/// (enums to defined values, i32 to 0..=40, the range of NRI field numbers).
pub fn filled(rng: &mut StdRng, descriptor: &MessageDescriptor) -> Box<dyn MessageDyn> {
    let mut message = descriptor.new_instance();
    for field in descriptor.fields() {
        match field.runtime_field_type() {
            RuntimeFieldType::Singular(ty) => {
                field.set_singular_field(&mut *message, value(rng, &ty))
            }
            RuntimeFieldType::Repeated(ty) => {
                for _ in 0..rng.random_range(1..=3) {
                    let item = value(rng, &ty);
                    field.mut_repeated(&mut *message).push(item);
                }
            }
            RuntimeFieldType::Map(k, v) => {
                for _ in 0..rng.random_range(1..=3) {
                    let (key, val) = (value(rng, &k), value(rng, &v));
                    field.mut_map(&mut *message).insert(key, val);
                }
            }
        }
    }
    message
}

/// A random `M` with every field set.
pub fn random<M: MessageFull>(rng: &mut StdRng) -> M {
    let bytes = filled(rng, &M::descriptor()).write_to_bytes_dyn().unwrap();
    M::parse_from_bytes(&bytes).unwrap()
}
