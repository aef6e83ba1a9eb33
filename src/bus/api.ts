/**
 * The org.virtnet.network1 bus API as data: every interface, member, argument name and signature. The
 * dispatcher (bus-objects.ts) checks calls against it and builds the live introspection from it; the
 * documented interface files in dbus/ describe the same members (a test compares the two). Pure.
 */

export const BUS_NAME = 'org.virtnet.network1';
export const MANAGER_INTERFACE = 'org.virtnet.network1.Manager';
export const NETWORK_INTERFACE = 'org.virtnet.network1.Network';
export const OBJECT_MANAGER_INTERFACE = 'org.freedesktop.DBus.ObjectManager';
export const PROPERTIES_INTERFACE = 'org.freedesktop.DBus.Properties';
export const INTROSPECTABLE_INTERFACE = 'org.freedesktop.DBus.Introspectable';
export const PEER_INTERFACE = 'org.freedesktop.DBus.Peer';

/** polkit action for read-only calls (declared; read-only calls are open, see dbus/*.policy). */
export const ACTION_READ = 'org.virtnet.network1.read';
/** polkit action every mutating call is checked against. */
export const ACTION_MANAGE = 'org.virtnet.network1.manage-networks';

export interface ArgSpec {
  name: string;
  type: string;
}

export interface MethodSpec {
  name: string;
  in: ArgSpec[];
  out: ArgSpec[];
  /** polkit action checked before the call (mutating calls); undefined = open to every caller. */
  action?: string;
}

export interface PropertySpec {
  name: string;
  type: string;
  access: 'read' | 'readwrite';
  /** org.freedesktop.DBus.Property.EmitsChangedSignal ('true' is the default and not annotated). */
  emitsChanged: 'true' | 'const';
}

export interface SignalSpec {
  name: string;
  args: ArgSpec[];
}

export interface InterfaceSpec {
  name: string;
  methods: MethodSpec[];
  properties: PropertySpec[];
  signals: SignalSpec[];
}

const a = (name: string, type: string): ArgSpec => ({ name, type });

export const managerInterface: InterfaceSpec = {
  name: MANAGER_INTERFACE,
  methods: [
    { name: 'ListNetworks', in: [], out: [a('networks', 'ao')] },
    { name: 'GetNetworkByName', in: [a('name', 's')], out: [a('network', 'o')] },
    { name: 'DefineNetwork', in: [a('xml', 's')], out: [a('network', 'o')], action: ACTION_MANAGE },
    { name: 'Reload', in: [], out: [], action: ACTION_MANAGE },
    {
      name: 'ImportLibvirt',
      in: [a('name', 's'), a('uri', 's')],
      out: [a('network', 'o')],
      action: ACTION_MANAGE,
    },
    { name: 'RevertLibvirt', in: [a('name', 's'), a('uri', 's')], out: [], action: ACTION_MANAGE },
    {
      name: 'HookEvent',
      in: [a('object', 's'), a('operation', 's'), a('sub_operation', 's'), a('extra', 's'), a('xml', 's')],
      out: [a('result', 's')],
      action: ACTION_MANAGE,
    },
  ],
  properties: [{ name: 'Version', type: 's', access: 'read', emitsChanged: 'const' }],
  signals: [{ name: 'NetworkEvent', args: [a('name', 's'), a('network', 'o'), a('event', 's')] }],
};

export const networkInterface: InterfaceSpec = {
  name: NETWORK_INTERFACE,
  methods: [
    { name: 'Start', in: [], out: [], action: ACTION_MANAGE },
    { name: 'Stop', in: [], out: [], action: ACTION_MANAGE },
    { name: 'Undefine', in: [], out: [], action: ACTION_MANAGE },
    { name: 'GetXML', in: [], out: [a('xml', 's')] },
    { name: 'SetAutostart', in: [a('autostart', 'b')], out: [], action: ACTION_MANAGE },
    {
      name: 'AddHost',
      in: [a('mac', 's'), a('ip', 's'), a('hostname', 's')],
      out: [],
      action: ACTION_MANAGE,
    },
    { name: 'RemoveHost', in: [a('mac', 's')], out: [], action: ACTION_MANAGE },
    {
      name: 'Update',
      in: [a('section', 's'), a('command', 's'), a('parent_index', 'i'), a('xml', 's')],
      out: [],
      action: ACTION_MANAGE,
    },
    { name: 'GetLeases', in: [], out: [a('leases', 'a(sssx)')] },
    { name: 'Doctor', in: [], out: [a('findings', 'a(ssss)')] },
    { name: 'GetLeasesWithDomains', in: [], out: [a('leases', 'a(sssxs)')] },
    // A spanning network's other hosts: address, role, reachable|unreachable|unknown, MACs behind it.
    { name: 'GetSpanPeers', in: [], out: [a('peers', 'a(sssas)')] },
  ],
  properties: [
    { name: 'Name', type: 's', access: 'read', emitsChanged: 'const' },
    { name: 'UUID', type: 's', access: 'read', emitsChanged: 'const' },
    { name: 'Active', type: 'b', access: 'read', emitsChanged: 'true' },
    { name: 'Autostart', type: 'b', access: 'read', emitsChanged: 'true' },
    { name: 'Bridge', type: 's', access: 'read', emitsChanged: 'true' },
    { name: 'ForwardMode', type: 's', access: 'read', emitsChanged: 'true' },
    { name: 'Libvirt', type: 's', access: 'read', emitsChanged: 'true' },
    { name: 'Span', type: 's', access: 'read', emitsChanged: 'true' },
  ],
  signals: [
    {
      name: 'LeaseChanged',
      args: [a('event', 's'), a('mac', 's'), a('ip', 's'), a('hostname', 's')],
    },
    { name: 'PortAttached', args: [a('ifname', 's'), a('mac', 's'), a('domain', 's')] },
    { name: 'PortDetached', args: [a('ifname', 's'), a('domain', 's')] },
  ],
};

export const objectManagerInterface: InterfaceSpec = {
  name: OBJECT_MANAGER_INTERFACE,
  methods: [{ name: 'GetManagedObjects', in: [], out: [a('objects', 'a{oa{sa{sv}}}')] }],
  properties: [],
  signals: [
    { name: 'InterfacesAdded', args: [a('object', 'o'), a('interfaces', 'a{sa{sv}}')] },
    { name: 'InterfacesRemoved', args: [a('object', 'o'), a('interfaces', 'as')] },
  ],
};

/** The standard interfaces every object answers (listed in the introspection). */
export const standardInterfaces: InterfaceSpec[] = [
  {
    name: PEER_INTERFACE,
    methods: [
      { name: 'Ping', in: [], out: [] },
      { name: 'GetMachineId', in: [], out: [a('machine_uuid', 's')] },
    ],
    properties: [],
    signals: [],
  },
  {
    name: INTROSPECTABLE_INTERFACE,
    methods: [{ name: 'Introspect', in: [], out: [a('xml_data', 's')] }],
    properties: [],
    signals: [],
  },
  {
    name: PROPERTIES_INTERFACE,
    methods: [
      { name: 'Get', in: [a('interface_name', 's'), a('property_name', 's')], out: [a('value', 'v')] },
      { name: 'GetAll', in: [a('interface_name', 's')], out: [a('props', 'a{sv}')] },
      { name: 'Set', in: [a('interface_name', 's'), a('property_name', 's'), a('value', 'v')], out: [] },
    ],
    properties: [],
    signals: [
      {
        name: 'PropertiesChanged',
        args: [a('interface_name', 's'), a('changed_properties', 'a{sv}'), a('invalidated_properties', 'as')],
      },
    ],
  },
];

/**
 * Network lifecycle events carried by Manager.NetworkEvent. 'repaired': rules of the running network
 * were found missing (another program flushed or replaced the ruleset) and were put back.
 */
export type NetworkEventKind = 'defined' | 'undefined' | 'started' | 'stopped' | 'updated' | 'repaired';

/** Concatenated signature of a list of arguments. */
export function signatureOf(args: ArgSpec[]): string {
  return args.map((x) => x.type).join('');
}
