//! A hostile guest whose every answer is its configuration (JSON): the
//! attack suite writes one attack per configuration, and checks that the
//! host lets none of it past the grants. It can also wait in WASI (a
//! monotonic-clock timer, which no epoch deadline reaches), fail with a
//! huge or line-forging message, and, as a validator, reject with what it
//! was shown of the merged adjustment and its owners.

mod attack;

use attack::{Attack, Where};
use nri_wasm_sdk::{
    export, Adjuster, Adjustment, Container, ContainerUpdate, LinuxResources, Plugin, PodSandbox,
    RuntimeInfo, Updates, ValidateRequest, Validator,
};

pub struct Attacker {
    attack: Attack,
}

impl Attacker {
    /// What every answer at `at` does first: wait, log, fail.
    fn prelude(&self, at: Where) -> Result<(), String> {
        self.attack.prelude(at)
    }

    fn updates(&self) -> Updates {
        let updates = self
            .attack
            .updates
            .iter()
            .flat_map(|spec| std::iter::repeat_n(spec, spec.copies.max(1)))
            .fold(Updates::new(), |u, spec| u.update(spec.build()));
        self.attack
            .evictions
            .iter()
            .flat_map(|id| std::iter::repeat_n(id, self.attack.eviction_copies.max(1)))
            .fold(updates, |u, id| u.evict(id, "attack"))
    }
}

impl Plugin for Attacker {
    fn configure(config: &str, _: &RuntimeInfo) -> Result<Self, String> {
        let attack: Attack =
            serde_json::from_str(config).map_err(|e| format!("bad attack: {e}"))?;
        attack.prelude(Where::Configure)?;
        Ok(Attacker { attack })
    }

    fn synchronize(
        &mut self,
        _: &[PodSandbox],
        containers: &[Container],
    ) -> Result<Vec<ContainerUpdate>, String> {
        self.prelude(Where::Synchronize)?;
        let mut updates = Vec::new();
        for spec in &self.attack.sync {
            let update = spec.build();
            if update.container_id == "*" {
                updates.extend(containers.iter().map(|c| ContainerUpdate {
                    container_id: c.id.clone(),
                    ..update.clone()
                }));
            } else {
                updates.extend(std::iter::repeat_n(update, spec.copies.max(1)));
            }
        }
        Ok(updates)
    }
}

impl Adjuster for Attacker {
    fn create_container(&mut self, _: &PodSandbox, _: &Container) -> Result<Adjustment, String> {
        self.prelude(Where::Create)?;
        let mut adjustment = Adjustment::new();
        *adjustment.raw() = self.attack.create.build();
        let updates = self.updates().into_reply();
        let adjustment = updates
            .updates
            .into_iter()
            .fold(adjustment, |a, u| a.update(u));
        Ok(updates
            .evictions
            .into_iter()
            .fold(adjustment, |a, e| a.evict(&e.container_id, &e.reason)))
    }

    fn update_container(
        &mut self,
        _: &PodSandbox,
        _: &Container,
        _: Option<&LinuxResources>,
    ) -> Result<Updates, String> {
        self.prelude(Where::Update)?;
        Ok(self.updates())
    }

    fn stop_container(&mut self, _: &PodSandbox, _: &Container) -> Result<Updates, String> {
        self.prelude(Where::Stop)?;
        Ok(self.updates())
    }
}

impl Validator for Attacker {
    fn validate(&mut self, request: &ValidateRequest) -> Result<(), String> {
        self.prelude(Where::Validate)?;
        if self.attack.reveal {
            return Err(attack::revealed(request));
        }
        match &self.attack.reject {
            Some(reason) => Err(reason.text()),
            None => Ok(()),
        }
    }
}

export!(Attacker: adjuster, validator);
