//! Pod and container lifecycles as a runtime drives them through NRI:
//! each event goes to the subscribed plugins in index order under the
//! event lock; answers are merged and applied to the runtime's state.

use std::sync::Arc;

use futures_util::future::{join_all, BoxFuture};
use nri_proto::{
    adjust::{owning_plugins, AdjustmentMerge, UpdateMerge},
    api::{
        self, Container, ContainerState, Event, LinuxResources, PluginInstance, PodSandbox,
        StateChangeEvent,
    },
    events::{event_name, Version, NRI_WITH_DEDICATED_RPCS, NRI_WITH_VALIDATION},
};
use protobuf::MessageField;
use tokio::sync::MutexGuard;

use crate::{
    plugin::{CallError, PluginConn},
    server::describe,
    validator::DEFAULT_VALIDATOR,
    Dropped, SimError, Simulator,
};

type Plugins<'a> = MutexGuard<'a, Vec<Arc<PluginConn>>>;

impl Simulator {
    /// Starts a pod.
    pub async fn run_pod_sandbox(&self, pod: PodSandbox) -> Result<(), SimError> {
        self.shared
            .state
            .lock()
            .expect("never poisoned")
            .add_pod(pod.clone());
        self.notify(Event::RUN_POD_SANDBOX, &pod, None).await
    }

    /// Updates a pod's resources (NRI v0.10 and later tell plugins).
    pub async fn update_pod_sandbox(
        &self,
        pod_id: &str,
        overhead: LinuxResources,
        resources: LinuxResources,
    ) -> Result<(), SimError> {
        let mut pod = self.pod_or_err(pod_id)?;
        if self.nri() >= NRI_WITH_VALIDATION {
            let plugins = self.lock_plugins().await;
            let request = api::UpdatePodSandboxRequest {
                pod: Some(pod.clone()).into(),
                overhead_linux_resources: Some(overhead).into(),
                linux_resources: Some(resources.clone()).into(),
                ..Default::default()
            };
            for plugin in subscribed(&plugins, Event::UPDATE_POD_SANDBOX) {
                let ctx = self.ctx();
                let call = plugin.client.update_pod_sandbox(ctx, &request);
                self.outcome(
                    &plugin,
                    Event::UPDATE_POD_SANDBOX,
                    self.call(&plugin, "UpdatePodSandbox", call).await,
                )?;
            }
        }
        pod.linux.mut_or_insert_default().resources = Some(resources).into();
        self.shared
            .state
            .lock()
            .expect("never poisoned")
            .add_pod(pod.clone());
        self.notify(Event::POST_UPDATE_POD_SANDBOX, &pod, None)
            .await
    }

    /// Stops a pod.
    pub async fn stop_pod_sandbox(&self, pod_id: &str) -> Result<(), SimError> {
        let pod = self.pod_or_err(pod_id)?;
        self.notify(Event::STOP_POD_SANDBOX, &pod, None).await
    }

    /// Removes a pod and whatever containers it still has.
    pub async fn remove_pod_sandbox(&self, pod_id: &str) -> Result<(), SimError> {
        let pod = self.pod_or_err(pod_id)?;
        self.notify(Event::REMOVE_POD_SANDBOX, &pod, None).await?;
        let mut state = self.shared.state.lock().expect("never poisoned");
        state.remove_pod(pod_id);
        for c in state
            .containers()
            .iter()
            .filter(|c| c.pod_sandbox_id == pod_id)
        {
            state.remove_container(&c.id);
        }
        Ok(())
    }

    /// Creates a container in its pod: plugins adjust it in index order,
    /// validators check the merged result, and the adjusted container is
    /// stored and returned. Fails on a plugin error, a conflict between
    /// plugins or a rejection, and then nothing is stored.
    pub async fn create_container(&self, container: Container) -> Result<Container, SimError> {
        let pod = self.pod_or_err(&container.pod_sandbox_id)?;
        let plugins = self.lock_plugins().await;
        let mut merge = AdjustmentMerge::new(container.clone());
        let mut updates = UpdateMerge::default();
        // As NRI, every plugin in the list counts as present, whether it
        // subscribes to the event or not (`adaptation.go: CreateContainer`).
        let consulted = plugins
            .iter()
            .map(|plugin| PluginInstance {
                name: plugin.name.clone(),
                index: plugin.index.clone(),
                ..Default::default()
            })
            .collect();
        for plugin in subscribed(&plugins, Event::CREATE_CONTAINER) {
            let request = api::CreateContainerRequest {
                pod: Some(pod.clone()).into(),
                container: Some(merge.container.clone()).into(),
                ..Default::default()
            };
            let call = plugin.client.create_container(self.ctx(), &request);
            let Some(reply) = self.outcome(
                &plugin,
                Event::CREATE_CONTAINER,
                self.call(&plugin, "CreateContainer", call).await,
            )?
            else {
                continue;
            };
            let adjust = reply.adjust.into_option().unwrap_or_default();
            merge
                .apply(&plugin.id(), &adjust)
                .map_err(|c| SimError::Conflict(c.to_string()))?;
            updates
                .apply(&plugin.id(), &reply.update, Some(&container.id))
                .map_err(|e| SimError::Conflict(e.to_string()))?;
        }
        self.validate(&plugins, &pod, &container, &merge, &updates, consulted)
            .await?;
        drop(plugins);

        let mut created = merge.container;
        created.state = ContainerState::CONTAINER_CREATED.into();
        let mut state = self.shared.state.lock().expect("never poisoned");
        state.add_container(created.clone());
        state.apply_updates(updates.updates());
        Ok(created)
    }

    /// Calls every validator at once with the pristine container and the
    /// merged changes; any rejection, error or timeout fails the creation.
    async fn validate(
        &self,
        plugins: &Plugins<'_>,
        pod: &PodSandbox,
        pristine: &Container,
        merge: &AdjustmentMerge,
        updates: &UpdateMerge,
        consulted: Vec<PluginInstance>,
    ) -> Result<(), SimError> {
        if self.nri() < NRI_WITH_VALIDATION {
            return Ok(());
        }
        // The built-in validator, index 00, comes first.
        if let Some(validator) = &self.shared.config.default_validator {
            validator
                .check(pod, &pristine.name, &consulted)
                .map_err(|reason| SimError::Rejected {
                    plugin: DEFAULT_VALIDATOR.to_string(),
                    reason,
                })?;
        }
        let mut owners: Vec<(&str, &nri_proto::adjust::Owners)> = updates.owners().collect();
        owners.push((&pristine.id, &merge.owners));
        let request = api::ValidateContainerAdjustmentRequest {
            pod: Some(pod.clone()).into(),
            container: Some(pristine.clone()).into(),
            adjust: Some(merge.merged.clone()).into(),
            update: updates.updates().to_vec(),
            owners: Some(owning_plugins(owners)).into(),
            plugins: consulted,
            ..Default::default()
        };
        let validators = subscribed(plugins, Event::VALIDATE_CONTAINER_ADJUSTMENT);
        let calls = validators.iter().map(|plugin| {
            let call = plugin
                .client
                .validate_container_adjustment(self.ctx(), &request);
            self.call(plugin, "ValidateContainerAdjustment", call)
        });
        let results = join_all(calls).await;
        for (plugin, result) in validators.iter().zip(results) {
            let reply = match result {
                Ok(reply) => reply,
                Err(err) => {
                    if let CallError::Fatal(reason) = &err {
                        self.drop_plugin(plugin, reason);
                    }
                    return Err(self.plugin_error(
                        plugin,
                        Event::VALIDATE_CONTAINER_ADJUSTMENT,
                        &err,
                    ));
                }
            };
            if reply.reject {
                return Err(SimError::Rejected {
                    plugin: plugin.id(),
                    reason: reply.reason,
                });
            }
        }
        Ok(())
    }

    /// Tells plugins a container was created.
    pub async fn post_create_container(&self, id: &str) -> Result<(), SimError> {
        self.container_event(Event::POST_CREATE_CONTAINER, id).await
    }

    /// Starts a container: StartContainer, then PostStartContainer.
    pub async fn start_container(&self, id: &str) -> Result<(), SimError> {
        self.container_event(Event::START_CONTAINER, id).await?;
        self.shared
            .state
            .lock()
            .expect("never poisoned")
            .set_state(id, ContainerState::CONTAINER_RUNNING);
        self.container_event(Event::POST_START_CONTAINER, id).await
    }

    /// Updates a container's resources; plugins may change the update and
    /// update other containers. Returns the container as updated.
    pub async fn update_container(
        &self,
        id: &str,
        resources: LinuxResources,
    ) -> Result<Container, SimError> {
        let (pod, container) = self.pod_and_container(id)?;
        let plugins = self.lock_plugins().await;
        let mut updates = UpdateMerge::with_request(api::ContainerUpdate {
            container_id: id.to_string(),
            linux: Some(api::LinuxContainerUpdate {
                resources: Some(resources.clone()).into(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        });
        for plugin in subscribed(&plugins, Event::UPDATE_CONTAINER) {
            let request = api::UpdateContainerRequest {
                pod: Some(pod.clone()).into(),
                container: Some(container.clone()).into(),
                linux_resources: Some(resources.clone()).into(),
                ..Default::default()
            };
            let call = plugin.client.update_container(self.ctx(), &request);
            if let Some(reply) = self.outcome(
                &plugin,
                Event::UPDATE_CONTAINER,
                self.call(&plugin, "UpdateContainer", call).await,
            )? {
                let theirs: Vec<_> = reply
                    .update
                    .into_iter()
                    .map(|u| plugin_update(u, id))
                    .collect();
                updates
                    .apply(&plugin.id(), &theirs, None)
                    .map_err(|e| SimError::Conflict(e.to_string()))?;
            }
        }
        drop(plugins);
        self.shared
            .state
            .lock()
            .expect("never poisoned")
            .apply_updates(updates.updates());
        self.container_event(Event::POST_UPDATE_CONTAINER, id)
            .await?;
        self.container(id)
            .ok_or_else(|| SimError::UnknownContainer(id.into()))
    }

    /// Stops a container; plugins may update the remaining ones.
    pub async fn stop_container(&self, id: &str) -> Result<(), SimError> {
        let (pod, container) = self.pod_and_container(id)?;
        let plugins = self.lock_plugins().await;
        let mut updates = UpdateMerge::default();
        for plugin in subscribed(&plugins, Event::STOP_CONTAINER) {
            let request = api::StopContainerRequest {
                pod: Some(pod.clone()).into(),
                container: Some(container.clone()).into(),
                ..Default::default()
            };
            let call = plugin.client.stop_container(self.ctx(), &request);
            if let Some(reply) = self.outcome(
                &plugin,
                Event::STOP_CONTAINER,
                self.call(&plugin, "StopContainer", call).await,
            )? {
                updates
                    .apply(&plugin.id(), &reply.update, Some(id))
                    .map_err(|e| SimError::Conflict(e.to_string()))?;
            }
        }
        drop(plugins);
        let mut state = self.shared.state.lock().expect("never poisoned");
        state.set_state(id, ContainerState::CONTAINER_STOPPED);
        state.apply_updates(updates.updates());
        Ok(())
    }

    /// Removes a container.
    pub async fn remove_container(&self, id: &str) -> Result<(), SimError> {
        self.container_event(Event::REMOVE_CONTAINER, id).await?;
        self.shared
            .state
            .lock()
            .expect("never poisoned")
            .remove_container(id);
        Ok(())
    }

    async fn container_event(&self, event: Event, id: &str) -> Result<(), SimError> {
        let (pod, container) = self.pod_and_container(id)?;
        self.notify(event, &pod, Some(&container)).await
    }

    /// Sends an event whose answer carries nothing, through its own RPC or,
    /// on runtimes before NRI v0.12, through StateChange.
    async fn notify(
        &self,
        event: Event,
        pod: &PodSandbox,
        container: Option<&Container>,
    ) -> Result<(), SimError> {
        let plugins = self.lock_plugins().await;
        for plugin in subscribed(&plugins, event) {
            let (method, call) = if self.nri() >= NRI_WITH_DEDICATED_RPCS {
                (
                    event_name(event),
                    dedicated_rpc(&plugin, self.ctx(), event, pod, container),
                )
            } else {
                (
                    "StateChange",
                    state_change(&plugin, self.ctx(), event, pod, container),
                )
            };
            self.outcome(&plugin, event, self.call(&plugin, method, call).await)?;
        }
        Ok(())
    }

    fn nri(&self) -> Version {
        self.shared.config.nri_version
    }

    fn ctx(&self) -> ttrpc::context::Context {
        ttrpc::context::with_duration(self.shared.config.request_timeout)
    }

    async fn call<T>(
        &self,
        plugin: &PluginConn,
        method: &'static str,
        request: impl std::future::Future<Output = ttrpc::Result<T>>,
    ) -> Result<T, CallError> {
        self.shared.record_call(plugin, method);
        plugin
            .call(self.shared.config.request_timeout, request)
            .await
    }

    /// The event lock, with plugins that went away swept out.
    async fn lock_plugins(&self) -> Plugins<'_> {
        let mut plugins = self.shared.plugins.lock().await;
        plugins.retain(|p| !p.is_closed());
        plugins
    }

    /// What a plugin's answer means for the request: an error fails it; a
    /// timeout or broken connection drops the plugin and the request goes
    /// on without it (`None`).
    fn outcome<T>(
        &self,
        plugin: &PluginConn,
        event: Event,
        result: Result<T, CallError>,
    ) -> Result<Option<T>, SimError> {
        match result {
            Ok(reply) => Ok(Some(reply)),
            Err(CallError::Fatal(reason)) => {
                self.drop_plugin(plugin, &reason);
                Ok(None)
            }
            Err(err) => Err(self.plugin_error(plugin, event, &err)),
        }
    }

    fn plugin_error(&self, plugin: &PluginConn, event: Event, err: &CallError) -> SimError {
        SimError::Plugin {
            plugin: plugin.id(),
            event: event_name(event).to_string(),
            message: describe(err).to_string(),
        }
    }

    fn drop_plugin(&self, plugin: &PluginConn, reason: &str) {
        tracing::warn!(plugin = %plugin.id(), %reason, "dropping plugin");
        plugin.close();
        self.shared
            .dropped
            .lock()
            .expect("never poisoned")
            .push(Dropped {
                plugin: plugin.id(),
                reason: reason.to_string(),
            });
    }

    fn pod_or_err(&self, id: &str) -> Result<PodSandbox, SimError> {
        self.pod(id).ok_or_else(|| SimError::UnknownPod(id.into()))
    }

    fn pod_and_container(&self, id: &str) -> Result<(PodSandbox, Container), SimError> {
        let container = self
            .container(id)
            .ok_or_else(|| SimError::UnknownContainer(id.into()))?;
        let pod = self.pod_or_err(&container.pod_sandbox_id)?;
        Ok((pod, container))
    }
}

fn subscribed(plugins: &[Arc<PluginConn>], event: Event) -> Vec<Arc<PluginConn>> {
    plugins
        .iter()
        .filter(|p| p.handles(event) && !p.is_closed())
        .cloned()
        .collect()
}

/// A plugin's answer to UpdateContainer that names no container means the
/// container being updated.
fn plugin_update(mut update: api::ContainerUpdate, id: &str) -> api::ContainerUpdate {
    if update.container_id.is_empty() {
        update.container_id = id.to_string();
    }
    update
}

fn opt<T>(value: Option<&T>) -> MessageField<T>
where
    T: Clone,
{
    MessageField::from_option(value.cloned())
}

fn state_change<'a>(
    plugin: &'a PluginConn,
    ctx: ttrpc::context::Context,
    event: Event,
    pod: &PodSandbox,
    container: Option<&Container>,
) -> BoxFuture<'a, ttrpc::Result<()>> {
    let request = StateChangeEvent {
        event: event.into(),
        pod: Some(pod.clone()).into(),
        container: opt(container),
        ..Default::default()
    };
    Box::pin(async move { plugin.client.state_change(ctx, &request).await.map(drop) })
}

fn dedicated_rpc<'a>(
    plugin: &'a PluginConn,
    ctx: ttrpc::context::Context,
    event: Event,
    pod: &PodSandbox,
    container: Option<&Container>,
) -> BoxFuture<'a, ttrpc::Result<()>> {
    let pod = Some(pod.clone()).into();
    let container = opt(container);
    let client = &plugin.client;
    match event {
        Event::RUN_POD_SANDBOX => {
            let r = api::RunPodSandboxRequest {
                pod,
                ..Default::default()
            };
            Box::pin(async move { client.run_pod_sandbox(ctx, &r).await.map(drop) })
        }
        Event::POST_UPDATE_POD_SANDBOX => {
            let r = api::PostUpdatePodSandboxRequest {
                pod,
                ..Default::default()
            };
            Box::pin(async move { client.post_update_pod_sandbox(ctx, &r).await.map(drop) })
        }
        Event::STOP_POD_SANDBOX => {
            let r = api::StopPodSandboxRequest {
                pod,
                ..Default::default()
            };
            Box::pin(async move { client.stop_pod_sandbox(ctx, &r).await.map(drop) })
        }
        Event::REMOVE_POD_SANDBOX => {
            let r = api::RemovePodSandboxRequest {
                pod,
                ..Default::default()
            };
            Box::pin(async move { client.remove_pod_sandbox(ctx, &r).await.map(drop) })
        }
        Event::POST_CREATE_CONTAINER => {
            let r = api::PostCreateContainerRequest {
                pod,
                container,
                ..Default::default()
            };
            Box::pin(async move { client.post_create_container(ctx, &r).await.map(drop) })
        }
        Event::START_CONTAINER => {
            let r = api::StartContainerRequest {
                pod,
                container,
                ..Default::default()
            };
            Box::pin(async move { client.start_container(ctx, &r).await.map(drop) })
        }
        Event::POST_START_CONTAINER => {
            let r = api::PostStartContainerRequest {
                pod,
                container,
                ..Default::default()
            };
            Box::pin(async move { client.post_start_container(ctx, &r).await.map(drop) })
        }
        Event::POST_UPDATE_CONTAINER => {
            let r = api::PostUpdateContainerRequest {
                pod,
                container,
                ..Default::default()
            };
            Box::pin(async move { client.post_update_container(ctx, &r).await.map(drop) })
        }
        Event::REMOVE_CONTAINER => {
            let r = api::RemoveContainerRequest {
                pod,
                container,
                ..Default::default()
            };
            Box::pin(async move { client.remove_container(ctx, &r).await.map(drop) })
        }
        other => unreachable!("{other:?} is not a notification event"),
    }
}
