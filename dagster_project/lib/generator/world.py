"""Simulate the demo world: persons, users, catalogue, campaigns, purchases, tracking, logistics.

Everything is vectorised with numpy and driven by one ``numpy.random.Generator(PCG64(seed))``,
so the same arguments give the same world. The result is one typed polars DataFrame per source
(timestamps as Int64 epoch seconds UTC, amounts as Int64 cents), each with a ``_day`` column: the
index (0 = ``start``) of the business-date file the row lands in. ``writers.py`` turns these
tables into files; ``truth.py`` computes the ground truth from them.

`build_world` calls one part after another, each in its own module; they share the one random
stream, so their order is part of the result (a part moved earlier changes every later draw):

    model.py      constants, PARAMS (the planted parameters), Clock, World, draw helpers
    catalog.py    products and the campaign calendar
    customers.py  persons and users
    marketing.py  campaign touches, and the purchases their clicks boost
    behaviour.py  the daily simulation: who buys, who visits, the experiment's assignment day
    orders.py     orders, lines, prices, payment, shipping, delivery, returns
    service.py    customer-service tickets
    events.py     tracking events and experiment assignments
    inventory.py  daily inventory snapshots
    members.py    membership events (their own random stream: drawn last, they change no other row)
    ad_spend.py   paid acquisition spend (its own random stream, drawn from the finished orders)
    regions.py    lower-tier cities (its own random stream: moves users' and orders' city within the province)
    private_domain.py  WeCom contacts, groups and messages (its own stream, from the finished users and orders)
    campaign_effects.py  planted campaign and win-back effects (own stream: which new customers a
                  campaign tagged, and win-back touches drawn from the finished orders and events)
    referral.py   share codes linking share events to the users they bring (own stream, only `properties`)
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from . import incidents as inc
from .behaviour import simulate_days
from .catalog import make_campaigns, make_products
from .customers import make_people
from .events import BEHAVIOUR_PARAMS, _make_events, make_experiments
from .inventory import _make_inventory
from .marketing import make_touches
from .ad_spend import ACQUISITION_PARAMS, make_ad_spend
from .campaign_effects import make_winback_touches
from .campaign_effects import planted as campaign_effects_planted
from .members import MEMBER_PARAMS, make_member_events
from .model import CATS, CHANNEL_W, CHANNELS, EXPERIMENT_ID, FAV_CAT_W, PARAMS, Clock, World, tz_offset_seconds
from .orders import make_orders
from .regions import move_to_lower_tiers
from .private_domain import PD_PARAMS, make_private_domain_events
from .referral import plant_referrals
from .service import make_tickets


def build_world(*, customers: int, days: int, seed: int, start: date, timezone: str, incidents: bool = True) -> World:
    rng = np.random.Generator(np.random.PCG64(seed))
    clock = Clock(start, days, tz_offset_seconds(timezone, start))
    W = World(clock)
    P = customers
    wk = clock.weekday[:days]
    weekend = wk >= 5
    plan = inc.plan_incidents(start, days, enabled=incidents)

    products, sku_cat, sku_list, _sku_cost, sku_launch = make_products(rng, clock)
    campaigns, active_camp, promo_mult, camp_kind, camp_s, camp_e = make_campaigns(rng, clock)

    people = make_people(rng, clock, P, promo_mult, weekend)
    # touches before purchases: clicks boost purchases
    touches, boost = make_touches(rng, clock, people, camp_kind, camp_s, camp_e)
    behaviour = simulate_days(rng, clock, people, plan, promo_mult, weekend, boost)
    o = make_orders(rng, clock, seed, people, behaviour, products, campaigns, active_camp, camp_kind,
                    sku_cat, sku_list, sku_launch)
    tk = make_tickets(rng, clock, people, o)

    events, exp_rows = _make_events(
        rng, clock, W, seed=seed, users_arrays=dict(
            user_ids=people.user_ids, u_person=people.u_person, u_primary=people.u_primary,
            u_reg_ts=people.u_reg_ts, u_track=people.u_track, u_anonweb=people.u_anonweb,
            u_platform=people.u_platform, fav=people.fav),
        orders_arrays=dict(o_user=o.o_user, o_ts=o.o_ts, paid=o.paid, cancelled=o.cancelled,
                           order_ids=o.order_ids, first_sku=o.l_sku[o.first_line]),
        visits=(behaviour.vis_u, behaviour.vis_d), assigned_day=behaviour.assigned_day, sku_cat=sku_cat,
        sku_ids=o.sku_ids, sku_launch=sku_launch, active_camp=active_camp, spike_first=plan["spike"])
    exp, experiments_expected, second_accounts, second_other_arm = make_experiments(
        clock, people, behaviour, boost, exp_rows)

    # planted win-back touches (own stream), drawn from the finished orders and events
    touches = make_winback_touches(seed, clock, people.users, o.orders, events, touches, o.campaigns)
    events, referral_planted = plant_referrals(seed, clock, events, people.users, o.orders)

    inv, deep_stock_sku = _make_inventory(rng, clock, o.sku_ids, sku_launch, o.l_sku, o.l_qty, o.o_day[o.l_order],
                                          o.wh[o.l_order], o.cancelled[o.l_order])

    W.tables = {
        "users": people.users, "products": products, "orders": o.orders, "order_items": o.order_items,
        "events": events, "returns": o.returns, "shipments": o.shipments, "cs_tickets": tk,
        "campaigns": o.campaigns, "marketing_touches": touches, "inventory_snapshots": inv,
        "experiment_assignments": exp,
        "member_events": make_member_events(seed, clock, people.users, o.orders),
        "ad_spend": make_ad_spend(seed, clock, people.users, o.orders, o.campaigns),
        "private_domain_events": make_private_domain_events(seed, clock, people.users, o.orders),
    }
    W.tables, region_planted = move_to_lower_tiers(seed, clock, W.tables)
    if plan["stop_first"] is not None:
        # planted stopped source: its files of the last days never land, so the rows in them do not exist
        src = inc.STOPPED_SOURCE
        W.tables[src] = W.tables[src].filter(pl.col("_day") < plan["stop_first"])
    W.incidents = plan["truth"]
    W.planted = dict(PARAMS)
    W.planted["member_events"] = dict(MEMBER_PARAMS)
    W.planted["acquisition"] = dict(ACQUISITION_PARAMS)
    W.planted["private_domain"] = dict(PD_PARAMS)
    W.planted["behaviour"] = dict(BEHAVIOUR_PARAMS)
    W.planted["region"] = region_planted
    W.planted.update(campaign_effects_planted())
    W.planted["referral"] = referral_planted
    W.planted.update({
        "experiment_id": EXPERIMENT_ID, "experiment_start_day_index": int(behaviour.exp_day),
        "experiment_start_date": clock.date(behaviour.exp_day).isoformat(),
        "persons": int(P), "persons_with_second_user": int(people.second.sum()),
        "persons_without_phone": int((~people.has_phone).sum()),
        "mean_lambda_per_day": float(people.lam.mean()), "mean_dropout_p": float(people.pdrop.mean()),
        "favourite_category_weights": dict(zip(CATS, FAV_CAT_W.tolist())),
        "primary_channel_weights": dict(zip(CHANNELS, CHANNEL_W.tolist())),
        "affinity_orders": int(o.aff_hit.sum()),
        "big_promotion_campaign_ids": [f"C{i + 1:03d}" for i in np.nonzero(o.camp_big)[0]],
        "slow_mover_skus": [str(o.sku_ids[i]) for i in o.slow_skus],
        "deep_stock_sku": deep_stock_sku,
        "experiments_expected": experiments_expected,
        "experiment_second_accounts": int(second_accounts),
        "experiment_second_accounts_other_arm": second_other_arm,
    })
    return W
