#!/bin/sh
# SPDX-License-Identifier: MIT
#
# PID 1 of the e2e guest (tests/e2e/run.sh builds the initramfs around it). Everything it
# wants the host to check is printed on the console as "E2E ..." lines.
#   phase 1: kpud --usb with two boards: QEMU's emulated FTDI (usb:1-1) and the CH340
#            double on dummy_hcd; detections stored; a DTR/RTS reset through kpuctl;
#            both unplugged and plugged back in; kpud keeps running throughout.
#   phase 2: kpud --usb=1a86:7523 --agent-boot sram: the agent image goes through the
#            double's boot ROM (ISP) before the session starts; then kpuctl agent flash
#            (ISP boot again, the agent writes the image to its flash, reset, handshake).
#   phase 3: the CH340 gadget unbound, the FT2232H double (two ports, a status header in
#            every IN packet, agent on port B) bound to the same UDC; kpud --usb=0403:6010
#            opens both ports, streams from port B and gives port A (no agent answers
#            HELLO there) back to ftdi_sio after --usb-give-back-after; a kpuctl reset
#            on port B; no klink error or lost frame through the per-packet headers.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /tmp /var/lib
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "E2E $* (t=$(up))"; }
say "USERSPACE_UP"
for m in usb-common usbcore xhci-hcd xhci-pci usbserial ftdi_sio ch341 configfs udc-core \
         libcomposite usb_f_fs; do
    insmod /lib/modules/$m.ko || say "MODULE_FAILED $m"
done
insmod /lib/modules/dummy_hcd.ko is_high_speed=0 || say "MODULE_FAILED dummy_hcd"
# libusb (Debian's build) learns of hotplug through udevd's re-broadcast events.
/lib/systemd/systemd-udevd --daemon --resolve-names=never >/tmp/udevd.log 2>&1 || say "UDEVD_FAILED"
udevadm trigger --action=add >/dev/null 2>&1
udevadm settle --timeout=10 >/dev/null 2>&1

# The CH340 double: configfs gadget + FunctionFS, bound to dummy_hcd's UDC.
mount -t configfs none /sys/kernel/config
G=/sys/kernel/config/usb_gadget/ch340
mkdir $G
echo 0x1a86 > $G/idVendor; echo 0x7523 > $G/idProduct; echo 0x0264 > $G/bcdDevice
mkdir $G/strings/0x409
echo "QinHeng (test double)" > $G/strings/0x409/manufacturer
echo "USB Serial" > $G/strings/0x409/product
mkdir $G/functions/ffs.ch340 $G/configs/c.1
ln -s $G/functions/ffs.ch340 $G/configs/c.1/
mkdir /dev/ffs-ch340
mount -t functionfs ch340 /dev/ffs-ch340
stty -F /dev/ttyS1 115200 raw -echo 2>/dev/null
ch340_double /dev/ffs-ch340 /dev/ttyS1 > /tmp/double.log 2>&1 &
CH340_PID=$!
sleep 0.5
echo dummy_udc.0 > $G/UDC

devdir() {  # devdir VID: the sysfs dir of the first device with that idVendor
    for d in /sys/bus/usb/devices/*; do
        [ "$(cat $d/idVendor 2>/dev/null)" = "$1" ] && { echo $d; return 0; }
    done
    return 1
}
wait_dev() {
    i=0; while [ $i -lt 100 ]; do devdir $1 >/dev/null && return 0; sleep 0.1; i=$((i+1)); done
    return 1
}
wait_dev 0403 && say "ENUMERATED ftdi $(basename $(devdir 0403))" || say "NOT_FOUND 0403"
wait_dev 1a86 && say "ENUMERATED ch340 $(basename $(devdir 1a86))" || say "NOT_FOUND 1a86"
sleep 1
for d in /sys/bus/usb/devices/*:1.0; do
    say "KERNEL_DRIVER $(basename $d) $(basename "$(readlink $d/driver)" 2>/dev/null)"
done
FT=usb:$(basename $(devdir 0403))
CH=usb:$(basename $(devdir 1a86))

db_frames() {  # db_frames DB PATH: frames stored for the device at PATH (or PATH:ifN)
    e2e_dbcheck $1 2>/dev/null | grep -E " path=$2(:if[0-9])? " | head -1 |
        sed -n 's/.* frames=\([0-9]*\).*/\1/p'
}
db_sessions() {
    e2e_dbcheck $1 2>/dev/null | grep -E " path=$2(:if[0-9])? " | head -1 |
        sed -n 's/.* sessions=\([0-9]*\).*/\1/p'
}
stop_kpud() {  # stop_kpud PID LABEL: SIGTERM, then at most 15 s before SIGKILL
    kill $1
    i=0; while [ $i -lt 30 ] && kill -0 $1 2>/dev/null; do sleep 0.5; i=$((i+1)); done
    if kill -0 $1 2>/dev/null; then say "KPUD_HUNG $2"; kill -9 $1; fi
    wait $1; say "KPUD_EXIT $? $2"
}
wait_sessions() {  # wait_sessions DB PATH MIN SECONDS: a new handshake was stored
    i=0; while [ $i -lt $(($4 * 2)) ]; do
        n=$(db_sessions $1 $2); [ -n "$n" ] && [ "$n" -gt "${3:-0}" ] && return 0
        sleep 0.5; i=$((i+1)); done
    return 1
}
wait_frames() {  # wait_frames DB PATH MIN SECONDS
    i=0; while [ $i -lt $(($4 * 2)) ]; do
        n=$(db_frames $1 $2); [ -n "$n" ] && [ "$n" -gt "${3:-0}" ] && return 0
        sleep 0.5; i=$((i+1)); done
    return 1
}

# ---- phase 1 ----
S=/tmp/k1
mkdir -p $S
: > /tmp/kpud1.log
kpud --usb --log-level debug --state-dir $S --socket $S/kpud.sock > /tmp/kpud1.log 2>&1 &
KPUD=$!
# kpud's log goes to the console as it is written: a hang still shows how far it got.
tail -f /tmp/kpud1.log | sed 's/^/kpud1| /' &
wait_frames $S/kpud.db $FT 0 90 && say "STREAMING ftdi" || say "NOT_STREAMING ftdi"
wait_frames $S/kpud.db $CH 0 60 && say "STREAMING ch340" || say "NOT_STREAMING ch340"
e2e_dbcheck $S/kpud.db | sed 's/^/E2E /'
CHID=$(e2e_dbcheck $S/kpud.db | grep " path=$CH " | sed -n 's/^DB device=\([^ ]*\) .*/\1/p')
kpuctl --socket $S/kpud.sock reset "$CHID" >/dev/null 2>&1 && say "RESET_REQUESTED $CHID" || say "RESET_FAILED $CHID"
sleep 2
F_CH=$(db_frames $S/kpud.db $CH); F_FT=$(db_frames $S/kpud.db $FT)
S_CH=$(db_sessions $S/kpud.db $CH); S_FT=$(db_sessions $S/kpud.db $FT)
say "UNPLUG ch340 ftdi"
echo "" > $G/UDC
FTD=$(devdir 0403)
echo 1 > $FTD/port/disable
sleep 2
devdir 0403 >/dev/null && say "STILL_PRESENT ftdi" || say "GONE ftdi"
devdir 1a86 >/dev/null && say "STILL_PRESENT ch340" || say "GONE ch340"
echo 0 > /sys/bus/usb/devices/usb1/1-0:1.0/usb1-port1/disable 2>/dev/null
for p in /sys/bus/usb/devices/usb*/*-0:1.0/usb*-port*/disable; do echo 0 > $p 2>/dev/null; done
echo dummy_udc.0 > $G/UDC
say "REPLUG ch340 ftdi"
wait_sessions $S/kpud.db $CH "$S_CH" 60 && say "REHANDSHAKE ch340" || say "NO_REHANDSHAKE ch340"
wait_sessions $S/kpud.db $FT "$S_FT" 60 && say "REHANDSHAKE ftdi" || say "NO_REHANDSHAKE ftdi"
F_CH=$(db_frames $S/kpud.db $CH); F_FT=$(db_frames $S/kpud.db $FT)
wait_frames $S/kpud.db $CH "$F_CH" 30 && say "RECOVERED ch340" || say "NOT_RECOVERED ch340"
wait_frames $S/kpud.db $FT "$F_FT" 30 && say "RECOVERED ftdi" || say "NOT_RECOVERED ftdi"
kill -0 $KPUD 2>/dev/null && say "KPUD_ALIVE pid $KPUD"
say "SESSIONS ch340 $S_CH -> $(db_sessions $S/kpud.db $CH) ftdi $S_FT -> $(db_sessions $S/kpud.db $FT)"
stop_kpud $KPUD phase1
e2e_dbcheck $S/kpud.db | sed 's/^/E2E /'

# ---- phase 2: agent boot through the ROM ISP ----
S=/tmp/k2
mkdir -p $S
: > /tmp/kpud2.log
kpud --usb=1a86:7523 --agent-boot sram --agent-image /agent.bin --isp-baud 1500000 --state-dir $S \
     --socket $S/kpud.sock > /tmp/kpud2.log 2>&1 &
KPUD=$!
tail -f /tmp/kpud2.log | sed 's/^/kpud2| /' &
i=0; while [ $i -lt 120 ] && ! grep -q "ISP: boot at" /tmp/double.log; do sleep 0.5; i=$((i+1)); done
wait_frames $S/kpud.db $CH 0 60 && say "STREAMING_AFTER_ISP ch340" || say "NOT_STREAMING_AFTER_ISP ch340"
# kpuctl agent flash: a second ISP boot of the image, then the agent writes it to its flash
# (the host checks the sim's flash file), then a reset into the application.
CHID=$(e2e_dbcheck $S/kpud.db | grep " path=$CH " | sed -n 's/^DB device=\([^ ]*\) .*/\1/p')
F_CH=$(db_frames $S/kpud.db $CH)
kpuctl --socket $S/kpud.sock agent flash "$CHID" > /tmp/flash.out 2>&1
say "AGENT_FLASH_EXIT $?"
sed 's/^/E2E flash| /' /tmp/flash.out
wait_frames $S/kpud.db $CH "${F_CH:-0}" 60 && say "STREAMING_AFTER_FLASH ch340" || say "NOT_STREAMING_AFTER_FLASH ch340"
stop_kpud $KPUD phase2
e2e_dbcheck $S/kpud.db | sed 's/^/E2E /'

echo "--- ch340_double log"; sed 's/^/E2E /' /tmp/double.log

# ---- phase 3: the FT2232H double (two interfaces, status headers) ----
# One UDC: the CH340 gadget leaves it, and its double lets go of ttyS1.
echo "" > $G/UDC
kill $CH340_PID; wait $CH340_PID 2>/dev/null
G2=/sys/kernel/config/usb_gadget/ft2232
mkdir $G2
echo 0x0403 > $G2/idVendor; echo 0x6010 > $G2/idProduct; echo 0x0700 > $G2/bcdDevice
mkdir $G2/strings/0x409
echo "FTDI (test double)" > $G2/strings/0x409/manufacturer
echo "Dual RS232-HS" > $G2/strings/0x409/product
mkdir $G2/functions/ffs.ft2232 $G2/configs/c.1
ln -s $G2/functions/ffs.ft2232 $G2/configs/c.1/
mkdir /dev/ffs-ft2232
mount -t functionfs ft2232 /dev/ffs-ft2232
: > /tmp/ft2232.log
ft2232_double /dev/ffs-ft2232 /dev/ttyS1 > /tmp/ft2232.log 2>&1 &
FT_PID=$!
i=0; while [ $i -lt 50 ] && ! grep -q "descriptors written" /tmp/ft2232.log; do
    sleep 0.1; i=$((i+1)); done
echo dummy_udc.0 > $G2/UDC
devdir_vp() {  # devdir_vp VID PID
    for d in /sys/bus/usb/devices/*; do
        [ "$(cat $d/idVendor 2>/dev/null)" = "$1" ] &&
            [ "$(cat $d/idProduct 2>/dev/null)" = "$2" ] && { echo $d; return 0; }
    done
    return 1
}
i=0; while [ $i -lt 100 ] && ! devdir_vp 0403 6010 >/dev/null; do sleep 0.1; i=$((i+1)); done
FD=$(devdir_vp 0403 6010) &&
    say "ENUMERATED ft2232 $(basename $FD) bcdDevice $(cat $FD/bcdDevice)" ||
    say "NOT_FOUND 0403:6010"
FI=/sys/bus/usb/devices/$(basename "$FD")
drv() { basename "$(readlink $1/driver)" 2>/dev/null; }
# ftdi_sio binds both ports (and sends its probe requests) before kpud starts.
i=0; while [ $i -lt 50 ] && [ -z "$(drv $FI:1.1)" -o -z "$(drv $FI:1.0)" ]; do
    sleep 0.1; i=$((i+1)); done
say "FT_KERNEL_DRIVER if0=$(drv $FI:1.0) if1=$(drv $FI:1.1)"
FT2=usb:$(basename "$FD")
FTL=$(wc -l < /tmp/ft2232.log)
S=/tmp/k3
mkdir -p $S
: > /tmp/kpud3.log
kpud --usb=0403:6010 --usb-give-back-after 4s --log-level debug --state-dir $S \
     --socket $S/kpud.sock > /tmp/kpud3.log 2>&1 &
KPUD=$!
tail -f /tmp/kpud3.log | sed 's/^/kpud3| /' &
wait_frames $S/kpud.db $FT2 0 60 && say "STREAMING ft2232" || say "NOT_STREAMING ft2232"
e2e_dbcheck $S/kpud.db | sed 's/^DB /E2E FT_DB /'
# What kpud asked of the double: the kernel's probe requests came before line FTL, and
# port B stays with kpud until it stops.
tail -n +$((FTL + 1)) /tmp/ft2232.log | grep -E 'SIO |MODEM_CTRL' |
    sed 's/^\[[^]]*\] /E2E FT_KPUD /'
# Port A: kpud opened it too (interface auto), no agent answers there; after the HELLO
# budget kpud releases it, ftdi_sio binds it again and it leaves the device list.
ndev() {  # boards on the FT2232 in `kpuctl devices` (the listing left in /tmp/devices3.txt)
    kpuctl --socket $S/kpud.sock devices > /tmp/devices3.txt 2>&1
    grep -c ' ft2232' /tmp/devices3.txt
}
i=0; while [ $i -lt 40 ] && ! { [ "$(ndev)" = 1 ] && [ "$(drv $FI:1.0)" = ftdi_sio ]; }; do
    sleep 0.5; i=$((i+1)); done
sed 's/^/E2E FT_DEVICES| /' /tmp/devices3.txt
say "FT_DEVICES_ON_BRIDGE $(grep -c ' ft2232' /tmp/devices3.txt)"
grep -q ' ft2232[a-z]* .*:if1$' /tmp/devices3.txt && say "FT_LISTED_PORT if1"
grep -q ':if0$' /tmp/devices3.txt && say "FT_LISTED_PORT if0"
say "FT_IFACE_A_DRIVER $(drv $FI:1.0)"
grep -q 'if0: .*given back' /tmp/kpud3.log && say "FT_GIVEN_BACK if0"
grep -q 'if1: .*given back' /tmp/kpud3.log && say "FT_GIVEN_BACK if1"
# A DTR/RTS reset through kpuctl: the goE profile's "into the application" steps.
FTID=$(e2e_dbcheck $S/kpud.db | grep -E " path=$FT2(:if1)? " |
    sed -n 's/^DB device=\([^ ]*\) .*/\1/p')
kpuctl --socket $S/kpud.sock reset "$FTID" >/dev/null 2>&1 && say "FT_RESET_REQUESTED $FTID" ||
    say "FT_RESET_FAILED $FTID"
i=0; while [ $i -lt 50 ] && ! tail -n +$((FTL + 1)) /tmp/ft2232.log |
    grep -A1 'MODEM_CTRL port=B DTR=1 RTS=0  (changed)' | grep -q 'port=B DTR=0 RTS=0  (changed)'; do
    sleep 0.1; i=$((i+1)); done
tail -n +$((FTL + 1)) /tmp/ft2232.log | grep -E '] MODEM_CTRL port=B .*changed' |
    sed 's/^\[[^]]*\] /E2E FT_RESET_SEEN /'
F_FT2=$(db_frames $S/kpud.db $FT2)
wait_frames $S/kpud.db $FT2 "$F_FT2" 10 && say "FT_STILL_STREAMING" ||
    say "FT_NOT_STREAMING_AFTER_GIVE_BACK"
kill -USR1 $FT_PID
i=0; while [ $i -lt 20 ] && [ "$(grep -c '] IN port=' /tmp/ft2232.log)" -lt 2 ]; do
    sleep 0.1; i=$((i+1)); done
grep '] IN port=' /tmp/ft2232.log | tail -2 | sed 's/^\[[^]]*\] /E2E FT_/'
stop_kpud $KPUD phase3
# After the stop the sessions rows hold kpud's final counters.
e2e_dbcheck $S/kpud.db | sed 's/^DB /E2E FT_DB_FINAL /'
kill $FT_PID; wait $FT_PID 2>/dev/null
echo "--- ft2232_double log"; sed 's/^/ft2232| /' /tmp/ft2232.log
say "ALL_DONE"
poweroff -f
