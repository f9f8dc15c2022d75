// The API's endpoints (docs/api.md), registered on the router by area.
#pragma once

#include "router.h"
#include "server_context.h"

namespace neuronlens::server {

// /api/info, /api/overview, /api/layers, /api/neurons, /api/tokens
void add_atlas_routes(Router& router, ServerContext& context);
// /api/heads (an atlas with mapped heads)
void add_head_routes(Router& router, ServerContext& context);
// /api/search
void add_search_routes(Router& router, ServerContext& context);
// /api/activations, /api/generate, /api/probe
void add_model_routes(Router& router, ServerContext& context);
// /api/attribute, /api/patch
void add_circuit_routes(Router& router, ServerContext& context);
// /api/compare/...
void add_compare_routes(Router& router, ServerContext& context);
// The UI's pages and its embedded assets.
void add_page_routes(Router& router);

}  // namespace neuronlens::server
