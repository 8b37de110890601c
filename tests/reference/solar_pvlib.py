#!/usr/bin/env python3
"""pvlib's clear-sky production for the cases on stdin (JSON list of
{unix, lat, lon, tilt, azimuth, capacity_kw}); prints one JSON list of
{apparent_zenith, azimuth, ghi, dni, dhi, poa_global, watts}.

The same model chain src/energy/solar.rs implements: SPA solar position
(pvlib's default 'nrel_numpy', pressure 101325 Pa, 12 degC), Kasten-Young
1989 air mass, Spencer extraterrestrial radiation (1366.1 W/m2),
Ineichen-Perez clear sky with Linke turbidity 3.0 at sea level, isotropic
transposition with albedo 0.25, and capacity_kw kW at 1000 W/m2.
Used by tests/solar_pvlib.rs.
"""

import json
import sys

import pandas as pd
import pvlib


def one(case):
    times = pd.DatetimeIndex([pd.Timestamp(case["unix"], unit="s", tz="UTC")])
    sun = pvlib.solarposition.get_solarposition(
        times, case["lat"], case["lon"], altitude=0, pressure=101325, temperature=12
    )
    zenith = sun["apparent_zenith"]
    airmass = pvlib.atmosphere.get_absolute_airmass(
        pvlib.atmosphere.get_relative_airmass(zenith, model="kastenyoung1989"), 101325
    )
    dni_extra = pvlib.irradiance.get_extra_radiation(
        times, solar_constant=1366.1, method="spencer"
    )
    sky = pvlib.clearsky.ineichen(
        zenith, airmass, linke_turbidity=3.0, altitude=0, dni_extra=dni_extra
    ).fillna(0.0)
    poa = pvlib.irradiance.get_total_irradiance(
        case["tilt"],
        case["azimuth"],
        zenith,
        sun["azimuth"],
        sky["dni"],
        sky["ghi"],
        sky["dhi"],
        albedo=0.25,
        model="isotropic",
    )
    poa_global = float(poa["poa_global"].fillna(0.0).clip(lower=0.0).iloc[0])
    return {
        "apparent_zenith": float(zenith.iloc[0]),
        "azimuth": float(sun["azimuth"].iloc[0]),
        "ghi": float(sky["ghi"].iloc[0]),
        "dni": float(sky["dni"].iloc[0]),
        "dhi": float(sky["dhi"].iloc[0]),
        "poa_global": poa_global,
        "watts": case["capacity_kw"] * poa_global,
    }


def main():
    cases = json.load(sys.stdin)
    print(json.dumps([one(case) for case in cases]))


if __name__ == "__main__":
    main()
