#!/usr/bin/env bash
# node-location.sh: where this node is, as the `location:` block of
# node.yaml (spec.location: country, priceArea, coordinates). start.sh calls
# it once, before it writes a new node.yaml.
#
#   scripts/node-location.sh [--country CC] [--price-area SE1..SE4] [--coordinates LAT,LON] [--ask]
#
# Given values are checked and used. With --ask (start.sh from a terminal)
# it asks for each, offering the country of the host's time zone. Without
# either, the country comes from the time zone (TZ, /etc/timezone or
# /etc/localtime, looked up in tzdata's zone.tab: Europe/Stockholm -> SE).
# Prints the YAML block on stdout (nothing when no country is known), what
# it decided on stderr, and exits 2 with the reason on a bad value.
set -euo pipefail

country=""
price_area=""
coordinates=""
ask=0
zone_tab="${ZONE_TAB:-/usr/share/zoneinfo/zone.tab}"

bad() {
  printf 'location: %s\n  fix: %s\n' "$1" "$2" >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --country) country="${2:-}"; shift ;;
    --price-area) price_area="${2:-}"; shift ;;
    --coordinates) coordinates="${2:-}"; shift ;;
    --ask) ask=1 ;;
    *) bad "unknown flag $1" "use --country, --price-area, --coordinates or --ask" ;;
  esac
  shift
done

# The host's time zone name (Europe/Stockholm), or nothing.
host_time_zone() {
  local zone="${TZ:-}"
  zone="${zone#:}"
  if [[ -z "$zone" && -s /etc/timezone ]]; then
    zone="$(head -n1 /etc/timezone)"
  fi
  if [[ -z "$zone" && -L /etc/localtime ]]; then
    zone="$(readlink -f /etc/localtime)"
    zone="${zone#*/zoneinfo/}"
  fi
  printf '%s' "$zone"
}

# The country code zone.tab gives a time zone, or nothing.
zone_country() {
  [[ -n "$1" && -r "$zone_tab" ]] || return 0
  awk -F'\t' -v zone="$1" '$1 !~ /^#/ && $3 == zone { print $1; exit }' "$zone_tab"
}

check_country() {
  [[ "$1" =~ ^[A-Z]{2}$ ]] \
    || bad "country \`$1\` is not an ISO 3166-1 alpha-2 code" "use two letters, such as SE, NO, DE"
  # The assigned codes, as garage validates them (tzdata's iso3166.tab).
  local codes
  codes="$(dirname "$zone_tab")/iso3166.tab"
  [[ ! -r "$codes" ]] || awk -F'\t' -v code="$1" '$1 == code { found = 1 } END { exit !found }' "$codes" \
    || bad "country \`$1\` is not an assigned ISO 3166-1 alpha-2 code" "use the country's code, such as SE, NO, FI, DK, DE"
}

check_price_area() {
  [[ "$1" =~ ^SE[1-4]$ ]] \
    || bad "price area \`$1\` is not one of SE1, SE2, SE3, SE4" "use the Swedish electricity price area of the node"
  [[ "$2" == SE ]] \
    || bad "price area $1 is Swedish, but the country is $2" "drop --price-area, or use --country SE"
}

check_coordinates() {
  local number='-?[0-9]+([.][0-9]+)?'
  [[ "$1" =~ ^($number),($number)$ ]] \
    || bad "coordinates \`$1\` are not LAT,LON" "give decimal degrees, such as 59.33,18.07"
  awk -v lat="${BASH_REMATCH[1]}" -v lon="${BASH_REMATCH[3]}" \
    'BEGIN { exit !(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180) }' \
    || bad "coordinates $1 are out of range" "latitude is -90..90, longitude -180..180"
}

# Asks on the terminal; the answer or the default.
ask_value() {
  local question="$1" default="$2" answer
  printf '%s%s: ' "$question" "${default:+ [$default]}" >&2
  read -r answer || answer=""
  printf '%s' "${answer:-$default}"
}

country="${country^^}"
price_area="${price_area^^}"
[[ -z "$country" && -n "$price_area" ]] && country=SE
zone="$(host_time_zone)"
from_zone="$(zone_country "$zone")"

if [[ $ask -eq 1 ]]; then
  [[ -n "$country" ]] || country="$(ask_value "Country of this node (ISO code, empty for none)" "$from_zone")"
  country="${country^^}"
  if [[ "$country" == SE && -z "$price_area" ]]; then
    price_area="$(ask_value "Swedish price area (SE1-SE4, empty if unsure)" "")"
    price_area="${price_area^^}"
  fi
  if [[ -n "$country" && -z "$coordinates" ]]; then
    coordinates="$(ask_value "Coordinates LAT,LON (empty to leave out)" "")"
  fi
elif [[ -z "$country" ]]; then
  if [[ -n "$from_zone" ]]; then
    country="$from_zone"
    printf 'location: country %s, from the time zone %s (--country sets another)\n' "$country" "$zone" >&2
  else
    printf 'location: not set: the time zone %s names no country (--country, --price-area and --coordinates set it)\n' \
      "${zone:-(none)}" >&2
  fi
fi

if [[ -z "$country" ]]; then
  [[ -z "$coordinates" ]] || bad "coordinates without a country" "add --country"
  exit 0
fi
check_country "$country"
[[ -z "$price_area" ]] || check_price_area "$price_area" "$country"
[[ -z "$coordinates" ]] || check_coordinates "$coordinates"

printf '  location:\n    country: %s\n' "$country"
[[ -z "$price_area" ]] || printf '    priceArea: %s\n' "$price_area"
if [[ -n "$coordinates" ]]; then
  printf '    coordinates:\n      latitude: %s\n      longitude: %s\n' "${coordinates%%,*}" "${coordinates#*,}"
fi
