# plot.gp - scenario 1 against connection count, one line per server.
# run-peers calls it with: dir (holding sweep-SERVER.dat), outfile, servers
# (space-separated), rate (messages/s per connection of the latency runs).
# Columns of sweep-SERVER.dat: connections, msgs per server CPU-second
# (unthrottled), p99 latency in us (at rate msg/s per connection), msg/s.
set terminal pngcairo size 1200,480 font ",10"
set output outfile
label(s) = s eq "wsc" ? "libwsc" : s eq "lws" ? "libwebsockets" : s eq "node" ? "node ws" : s eq "gorilla" ? "gorilla/websocket" : s eq "floor" ? "floor (read+write only)" : s
set multiplot layout 1,2 title "Echo, 23-byte messages; server on core 0, wsc-bench on core 1"
set logscale xy
set grid
set key top right
set xlabel "connections"
set xrange [7:1500]
set xtics (10, 100, 1000)
set ylabel "echoed messages per server CPU-second"
set title "Throughput, unthrottled"
set format y "%.0s%c"
set yrange [50000:*]
set offsets 0, 0, graph 0.35, 0
plot for [s in servers] sprintf("%s/sweep-%s.dat", dir, s) using 1:2 with linespoints lw 2 title label(s)
set key top left
set autoscale y
set offsets 0, 0, 0, 0
set ylabel "p99 latency (ms)"
set title sprintf("p99 latency at %s msg/s per connection", rate)
set format y "%g"
plot for [s in servers] sprintf("%s/sweep-%s.dat", dir, s) using 1:($3/1000) with linespoints lw 2 title label(s)
unset multiplot
