# key-metric.sh - sourced by run-peers and rounds: which figure judges a
# scenario (the median round is chosen by it, the ratios are taken on it).
key_metric() {
    case $1 in
    s2 | k2 | t2 | tp2) echo mb_per_srv_cpu_s ;;
    s4-* | t4-* | tp4-*) echo bytes_per_conn ;;
    s5) echo hs_per_srv_cpu_s ;;
    swr-*) echo p99_us ;;
    *) echo msgs_per_srv_cpu_s ;;
    esac
}
