//! The energy monitor: samples the solar production (model or inverter)
//! and the node's draw every [`SAMPLE_PERIOD`], publishes the result as the
//! power status (`/status`'s `power`, the heartbeat's `power`, the
//! `garage_node_*` metrics), meters the energy of each network job
//! (`super::meter`) and answers the `solar-only` claim gate. A production
//! that cannot be read counts as 0 and sets the power status's
//! `SolarProduction` condition to False with the reason; the monitor never
//! stops for it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

use crate::coordinator::api::PowerReport;
use crate::metrics::AgentMetrics;
use crate::reconcile::status::{Condition, ConditionStatus, ConditionType};
use crate::spec::types::{PowerPolicy, PowerSource};
use crate::spec::{PowerSettings, ProductionSource};

use super::draw::{DrawSample, DrawSampler};
use super::inverter::Inverter;
use super::meter::{Interval, JobEnergy, Meter};
use super::solar::{self, Panel};

/// How often the monitor samples when no job starts or ends.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(5);

/// Unix time in seconds; injectable so tests can set the sun.
pub type Clock = Arc<dyn Fn() -> f64 + Send + Sync>;

/// The node's power at the last sample, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PowerStatus {
    pub source: PowerSource,
    pub policy: PowerPolicy,
    /// RFC 3339.
    pub sampled_at: String,
    pub draw: DrawSample,
    /// Absent on grid nodes; 0 while it cannot be read.
    pub production_watts: Option<f64>,
    /// `model` or `http`; absent on grid nodes.
    pub production_source: Option<&'static str>,
    /// Production minus draw; absent on grid nodes.
    pub surplus_watts: Option<f64>,
    /// Jobs that `solar-only` lets the node claim on this surplus (see
    /// [`EnergyMonitor::claimable`]); absent for other policies.
    pub expected_job_watts: Option<f64>,
    /// `SolarProduction` on solar nodes; empty on grid nodes.
    pub conditions: Vec<Condition>,
}

impl PowerStatus {
    /// The heartbeat's form.
    pub fn report(&self) -> PowerReport {
        PowerReport {
            source: self.source.as_str().to_owned(),
            policy: self.policy.as_str().to_owned(),
            draw_watts: self.draw.watts,
            draw_measured_by: self.draw.measured_by.as_str().to_owned(),
            production_watts: self.production_watts,
            production_source: self.production_source.map(str::to_owned),
            production_ok: self
                .conditions
                .iter()
                .find(|c| c.type_ == ConditionType::SolarProduction)
                .map(|c| c.status == ConditionStatus::True),
            surplus_watts: self.surplus_watts,
        }
    }
}

/// Where production is read.
#[derive(Debug)]
enum Production {
    None,
    Model(Panel),
    Http(Inverter),
}

/// A production reading: watts, or why there are none.
type Reading = Result<f64, (&'static str, String)>;

#[derive(Debug)]
struct State {
    sampler: DrawSampler,
    meter: Meter,
    /// The last production reading (0 while failing), W.
    production: Option<f64>,
    condition: Option<Condition>,
    /// Finished jobs' energy (J) and seconds, for the expected job draw.
    finished_joules: f64,
    finished_seconds: f64,
}

/// The node's energy monitor; clones share it.
#[derive(Clone)]
pub struct EnergyMonitor {
    settings: PowerSettings,
    production: Arc<Production>,
    state: Arc<Mutex<State>>,
    status: watch::Sender<Option<PowerStatus>>,
    metrics: AgentMetrics,
    clock: Clock,
}

impl std::fmt::Debug for EnergyMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnergyMonitor")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl EnergyMonitor {
    /// A monitor for `settings` with the host's draw sources and the system clock.
    pub fn for_host(settings: &PowerSettings, metrics: AgentMetrics) -> Self {
        let clock: Clock = Arc::new(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        });
        EnergyMonitor::new(settings, DrawSampler::for_host(), clock, metrics)
    }

    pub fn new(
        settings: &PowerSettings,
        sampler: DrawSampler,
        clock: Clock,
        metrics: AgentMetrics,
    ) -> Self {
        let production = match &settings.solar {
            None => Production::None,
            Some(solar) => match &solar.production {
                ProductionSource::Model {
                    latitude,
                    longitude,
                } => Production::Model(Panel {
                    latitude: *latitude,
                    longitude: *longitude,
                    capacity_kw: solar.capacity_kw,
                    tilt_deg: solar.tilt_deg,
                    azimuth_deg: solar.azimuth_deg,
                }),
                ProductionSource::Http(source) => Production::Http(Inverter::new(source.clone())),
            },
        };
        let (status, _) = watch::channel(None);
        EnergyMonitor {
            settings: settings.clone(),
            production: Arc::new(production),
            state: Arc::new(Mutex::new(State {
                sampler,
                meter: Meter::default(),
                production: None,
                condition: None,
                finished_joules: 0.0,
                finished_seconds: 0.0,
            })),
            status,
            metrics,
            clock,
        }
    }

    /// The power status as it changes (`None` before the first sample).
    pub fn subscribe(&self) -> watch::Receiver<Option<PowerStatus>> {
        self.status.subscribe()
    }

    /// The last power status.
    pub fn latest(&self) -> Option<PowerStatus> {
        self.status.borrow().clone()
    }

    /// Samples every [`SAMPLE_PERIOD`] until dropped (the agent's
    /// supervisor cancels it).
    pub async fn run(self) {
        loop {
            self.sample().await;
            tokio::time::sleep(SAMPLE_PERIOD).await;
        }
    }

    /// Reads the production and the draw now and publishes them.
    pub async fn sample(&self) -> PowerStatus {
        let reading = self.read_production().await;
        self.record(Some(reading), |_| {})
    }

    /// Starts metering a job (after sampling, so it is charged from now).
    pub fn job_started(&self, job: Uuid) {
        self.record(None, |meter| meter.start(job));
    }

    /// Stops metering a job; what it used.
    pub fn job_finished(&self, job: Uuid) -> Option<JobEnergy> {
        let mut energy = None;
        self.record(None, |meter| energy = meter.finish(job));
        if let Some(used) = &energy {
            let mut state = self.lock();
            state.finished_joules += used.energy_wh * 3600.0;
            state.finished_seconds += used.seconds;
        }
        energy
    }

    /// How many of `free` slots the node may claim now: all of them unless
    /// the policy is `solar-only`; then as many jobs as the solar surplus
    /// covers at the expected draw of a job (the average power of the jobs
    /// this node finished; before the first, the node's whole current draw).
    pub fn claimable(&self, free: u32) -> u32 {
        if self.settings.policy != PowerPolicy::SolarOnly {
            return free;
        }
        let Some(status) = self.latest() else {
            return 0;
        };
        let (Some(surplus), Some(expected)) = (status.surplus_watts, status.expected_job_watts)
        else {
            return 0;
        };
        if surplus <= 0.0 || expected <= 0.0 {
            return 0;
        }
        let covered = (surplus / expected).floor();
        if covered >= f64::from(free) {
            free
        } else {
            // 0 <= covered < free, a whole number.
            covered as u32
        }
    }

    async fn read_production(&self) -> Reading {
        match &*self.production {
            Production::None => Ok(0.0),
            Production::Model(panel) => solar::estimate(panel, (self.clock)())
                .map(|e| e.watts)
                .ok_or((
                    "ModelUnavailable",
                    "the time is outside the solar position algorithm's years".to_owned(),
                )),
            Production::Http(inverter) => inverter
                .read_watts()
                .await
                .map_err(|err| (err.reason(), crate::error_text::one_line(&err))),
        }
    }

    /// Samples the draw, charges the interval to the running jobs, then
    /// runs `change` on the meter and publishes the status. `reading` is a
    /// fresh production reading, or `None` to keep the last one.
    fn record(&self, reading: Option<Reading>, change: impl FnOnce(&mut Meter)) -> PowerStatus {
        let solar = self.settings.solar.is_some();
        let mut state = self.lock();
        if let (Some(reading), true) = (reading, solar) {
            let (watts, condition) = match reading {
                Ok(watts) => (
                    watts,
                    (ConditionStatus::True, "ProductionRead", self.read_message()),
                ),
                Err((reason, message)) => (0.0, (ConditionStatus::False, reason, message)),
            };
            state.production = Some(watts);
            set_condition(&mut state.condition, condition);
        }
        let draw = state.sampler.sample(Instant::now());
        let production = state.production.filter(|_| solar);
        let solar_joules = production.map(|p| p.min(draw.watts) * draw.seconds);
        state.meter.record(Interval {
            joules: draw.joules,
            seconds: draw.seconds,
            solar_joules,
            measured_by: draw.measured_by.as_str(),
        });
        change(&mut state.meter);
        let expected_job_watts = (self.settings.policy == PowerPolicy::SolarOnly).then(|| {
            if state.finished_seconds > 0.0 {
                state.finished_joules / state.finished_seconds
            } else {
                draw.watts
            }
        });
        let status = PowerStatus {
            source: self.settings.source,
            policy: self.settings.policy,
            sampled_at: crate::clock::rfc3339_millis(((self.clock)() * 1000.0) as i64),
            draw,
            production_watts: production,
            production_source: match &*self.production {
                Production::None => None,
                Production::Model(_) => Some("model"),
                Production::Http(_) => Some("http"),
            },
            surplus_watts: production.map(|p| p - draw.watts),
            expected_job_watts,
            conditions: state.condition.iter().cloned().collect(),
        };
        drop(state);
        self.metrics.power_draw_watts.set(draw.watts);
        self.metrics
            .solar_production_watts
            .set(production.unwrap_or(0.0));
        self.metrics
            .power_surplus_watts
            .set(production.unwrap_or(0.0) - draw.watts);
        self.metrics.energy_joules.inc_by(draw.joules.max(0.0));
        if let Some(joules) = solar_joules {
            self.metrics.solar_energy_joules.inc_by(joules.max(0.0));
        }
        self.status.send_replace(Some(status.clone()));
        status
    }

    fn read_message(&self) -> String {
        match &*self.production {
            Production::Model(p) => format!(
                "clear-sky model for ({}, {}), {} kW at tilt {}° azimuth {}°",
                p.latitude, p.longitude, p.capacity_kw, p.tilt_deg, p.azimuth_deg
            ),
            Production::Http(_) => "the inverter answers".to_owned(),
            Production::None => String::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sets the `SolarProduction` condition; the transition time moves only
/// when the status flips, and a flip is logged.
fn set_condition(
    condition: &mut Option<Condition>,
    (status, reason, message): (ConditionStatus, &str, String),
) {
    let now = crate::clock::rfc3339_secs(SystemTime::now());
    let flipped = condition.as_ref().is_none_or(|c| c.status != status);
    if flipped {
        match status {
            ConditionStatus::True => tracing::info!(%message, "solar production can be read"),
            _ => {
                tracing::warn!(reason, %message, "cannot read the solar production; counting it as 0")
            }
        }
    }
    let last_transition_time = match condition {
        Some(c) if !flipped => c.last_transition_time.clone(),
        _ => now,
    };
    *condition = Some(Condition {
        type_: ConditionType::SolarProduction,
        status,
        reason: reason.to_owned(),
        message,
        last_transition_time,
    });
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
