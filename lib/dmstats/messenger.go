package dmstats

import (
	"fmt"

	"github.com/dmfm/dmfm/lib/dm"
)

// deviceMessenger sends messages to one dm device through a dm.Client.
type deviceMessenger struct {
	c  *dm.Client
	id dm.DevID
}

// DeviceMessenger returns a Messenger for device id: it sends each message
// to sector 0 of the device with c (the kernel routes "@stats_" messages to
// dm-stats whatever the target) and names the device in its errors.
func DeviceMessenger(c *dm.Client, id dm.DevID) Messenger {
	return deviceMessenger{c: c, id: id}
}

// Message sends msg and returns the kernel's reply.
func (d deviceMessenger) Message(msg string) (string, error) {
	reply, err := d.c.Message(d.id, 0, msg)
	if err != nil {
		return "", fmt.Errorf("device %s: %w", d.id, err)
	}
	return reply, nil
}
