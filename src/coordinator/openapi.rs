//! The OpenAPI document of the whole API (served at [`OPENAPI_PATH`],
//! committed as `manifests/coordinator.openapi.json`): every domain's
//! routes and the security schemes they use.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

// Imported by name, not referenced by module path: utoipa tags each
// operation referenced by path with its module's name (the join-token
// routes keep the `token_routes` tag they always had).
use super::accounts::routes::{__path_create_account, __path_list_accounts, __path_revoke_account};
use super::gateway::link_route::__path_open;
use super::gateway::routes::{__path_chat_completions, __path_completions, __path_models};
use super::gateway::views::{__path_links, __path_request};
use super::governance::node_routes::{__path_node_create_proposal, __path_node_vote};
use super::governance::routes::{
    __path_cast_vote, __path_create_proposal, __path_get_proposal, __path_list_proposals,
    __path_list_votes,
};
use super::jobs::lease_routes::{__path_append_logs, __path_claim, __path_complete, __path_renew};
use super::jobs::log_routes::__path_job_logs;
use super::jobs::routes::{__path_cancel_job, __path_get_job, __path_list_jobs, __path_submit_job};
use super::ledger::routes::{__path_audit, __path_get_balance, __path_list_transfers, __path_mint};
use super::nodes::routes::{
    __path_coordinator_info, __path_delete_node, __path_get_node, __path_heartbeat,
    __path_list_heartbeats, __path_list_markets, __path_list_nodes, __path_register,
};
use super::nodes::token_routes;
use super::parameters::routes::{
    __path_get_parameter, __path_list_parameters, __path_set_parameter,
};
use super::qualification::routes::{
    __path_delete_qualification, __path_get_qualification, __path_set_qualification,
};
use super::regions::routes::__path_list_regions;
use crate::identity::signing;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// The OpenAPI description of the coordinator's API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Garage AI coordinator",
        description = "Node registration, signed heartbeats, node and market views. \
Node requests carry x-garage-node, x-garage-coordinator, x-garage-timestamp, \
x-garage-nonce and x-garage-signature: an ed25519 signature over \
\"garage-sig-v2\\nCOORDINATOR_ID\\nMETHOD\\nPATH\\nSHA256(body) hex\\nTIMESTAMP\\nNONCE\\nNODE_ID\" \
where COORDINATOR_ID is the coordinator_id of GET /api/coordinator. Errors are {\"error\": {\"code\", \"message\"}}. \
A new node id needs a join token (`join_token`) unless the coordinator runs with \
--registration open. Lists take `limit` (1-500, default 100) and `continue` (the previous \
page's `continue`). \
Jobs: clients submit with `Authorization: Bearer gk_…` (an API key from POST /api/accounts); \
nodes pull them with the signed long-poll POST /api/nodes/{id}/claim and hold each under a \
lease whose id fences renew, logs and complete (409 once it is not the job's current live lease). \
A market with a qualification (PUT /api/markets/{market}/qualification) gives a node of it only \
its qualification job until it passed. \
Money: amounts are integers in µGAI; a client's submission holds price x timeout (402 when the balance \
does not cover it), the completing lease's node is paid price x billed seconds minus the network fee \
(GET /api/parameters), the rest goes back; GET /api/ledger/audit checks every invariant. \
Governance: proposals (POST /api/proposals, or signed POST /api/nodes/{id}/proposals) change a \
parameter, mint GAI or signal; voting power is each client and node account's balance frozen \
when the proposal opens; votes (POST /api/proposals/{id}/votes with an API key, or signed \
POST /api/nodes/{id}/votes) replace the voter's earlier vote until the deadline; the tally \
follows the deadline. \
Regions and energy: GET /api/regions groups nodes by country, Swedish price area and nearby cells \
with their capacity, power and the energy and CO2 of the jobs completed there; a job's energy \
(from its node's report) is in GET /api/jobs/{id}. \
Placement: a job's constraints.residency (countries, eu, priceAreas) limits the nodes that may run \
it; placement.energy prefer-green waits up to placement.greenWait for a node running on its own \
solar surplus; among the fitting claims a round picks by green power, grid carbon, distance and load. \
Gateway: /v1/models, /v1/chat/completions and /v1/completions take OpenAI's bodies with an API key and \
are served by linked nodes (each node holds one signed WebSocket, GET /api/nodes/{id}/link); \
X-Garage-Residency (or the account's default) limits where; each request holds its upper bound \
(prompt bytes and max_tokens at the market's pricePer1kInputTokens and pricePer1kOutputTokens) and \
is charged the tokens delivered; errors here are OpenAI's {\"error\": {\"message\", \"type\", \"param\", \"code\"}}."
    ),
    paths(
        register,
        heartbeat,
        list_nodes,
        get_node,
        delete_node,
        list_heartbeats,
        list_markets,
        token_routes::create_join_token,
        token_routes::list_join_tokens,
        token_routes::revoke_join_token,
        coordinator_info,
        create_account,
        list_accounts,
        revoke_account,
        submit_job,
        list_jobs,
        get_job,
        cancel_job,
        job_logs,
        claim,
        renew,
        append_logs,
        complete,
        set_qualification,
        get_qualification,
        delete_qualification,
        list_parameters,
        get_parameter,
        set_parameter,
        get_balance,
        list_transfers,
        mint,
        audit,
        create_proposal,
        list_proposals,
        get_proposal,
        cast_vote,
        list_votes,
        node_create_proposal,
        node_vote,
        list_regions,
        models,
        chat_completions,
        completions,
        links,
        request,
        open
    ),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "node_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                signing::HEADER_SIGNATURE,
                "ed25519 signature of the canonical request by the node key, with \
                 x-garage-node, x-garage-timestamp and x-garage-nonce",
            ))),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("gk_<id>_<secret>")
                    .description(Some(
                        "a client's API key (`garage account create`); the admin token is \
                         accepted too and sees every job",
                    ))
                    .build(),
            ),
        );
    }
}
